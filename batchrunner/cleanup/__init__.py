"""The parts of the `users-cleanup` job (README, "User maintenance: `users-cleanup`"): its rules, its selection."""
