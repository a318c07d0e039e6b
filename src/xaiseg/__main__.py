from xaiseg.cli import main

raise SystemExit(main())
