"""Bot: the Discord front end. It talks to the gateway only."""
