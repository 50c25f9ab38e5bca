"""WSGI entry point for gunicorn; a bad variable stops it with one ``config error`` line."""

import os

from django.core.wsgi import get_wsgi_application

from spine.config import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
application = exit_on_config_error(get_wsgi_application)
