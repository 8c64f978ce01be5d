"""Who is calling (JWT, API keys), what they may touch, and how often (rate limits)."""
