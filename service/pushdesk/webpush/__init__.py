"""Web Push delivery: encryption, VAPID, the sender and response classification."""
