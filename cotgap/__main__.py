from cotgap.cli import main

main()
