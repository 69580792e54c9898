from .threads import main

raise SystemExit(main())
