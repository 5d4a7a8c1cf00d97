from twilio_caller.cli import main

raise SystemExit(main())
