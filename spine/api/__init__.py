"""The API platform: conventions every Market Spine endpoint follows (docs/api.md)."""
