from callscope.cli import main

main()
