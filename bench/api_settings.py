"""Settings for ``bench/api.py`` only: the production settings with a URL map that adds
one empty DRF view as the benchmark's baseline. Never used by the application."""

from spine.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
