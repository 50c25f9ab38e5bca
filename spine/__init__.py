"""Market Spine: the Django project package."""

from spine.celery import app as celery_app

__all__ = ["celery_app"]
