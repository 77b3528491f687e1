"""Operating it unattended: metrics and health, checks, pings, notifications, retention, sd_notify (README, "Operating it unattended")."""
