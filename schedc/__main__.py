from schedc.cli import main

raise SystemExit(main())
