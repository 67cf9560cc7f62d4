from toksuite.cli import main

main()
