"""The API platform: conventions every Market Spine endpoint follows.

- :mod:`spine.api.views` — base classes (rate limiting, error shape) to subclass;
- :mod:`spine.api.permissions` — read/write policy with per-action model permissions;
- :mod:`spine.api.pagination` — page-number pagination with totals;
- :mod:`spine.api.filters` — strict ordering (unknown sort fields are a 400);
- :mod:`spine.api.errors` — the one error body, DRF and Django handlers, domain
  exception mapping;
- :mod:`spine.api.ratelimit` — read/write budgets in the shared cache;
- :mod:`spine.api.schema` — OpenAPI conventions (error responses, rate-limit headers);
- :mod:`spine.api.urls` — the router other apps register on.

See ``docs/api.md``.
"""
