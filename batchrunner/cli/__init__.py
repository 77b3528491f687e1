"""The command line, `runner`: each command parses, calls one core function, renders the result (README, "Commands")."""
