from recon_cli.main import main

raise SystemExit(main())
