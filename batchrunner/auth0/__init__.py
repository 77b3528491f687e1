"""The Auth0 client side: tokens and their cache, the HTTP session, retries, pacing and rate limits, lists, async jobs (README, "Tokens")."""
