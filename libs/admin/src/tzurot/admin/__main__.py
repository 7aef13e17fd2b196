"""`python -m tzurot.admin ...`: what `tzurot admin ...` runs (also inside the gateway pod)."""

from tzurot.admin.commands import main

if __name__ == "__main__":
    main()
