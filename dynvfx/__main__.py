from dynvfx.cli import main

raise SystemExit(main())
