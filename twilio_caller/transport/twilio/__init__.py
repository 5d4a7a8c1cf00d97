"""The Twilio TwiML/Gather transport: the Calls API client, TwiML building, signature and
parameter parsing, the webhook route table and Twilio's status vocabulary."""
