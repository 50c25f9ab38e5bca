"""The workers' Redis transport: kombu's, guarded for a channel its connection dropped
(why: docs/executions.md#nothing-lost).
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

DETACHED = "the broker channel closed with its connection; message left for redelivery"


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS that does not reach for a connection its channel lost."""

    def _detached(self) -> bool:
        transport = self.channel.connection
        return transport is None or transport.client is None

    def restore_unacked(self, client: Any = None) -> None:
        if self._detached():
            if self._delivered:
                logger.warning("%s (%s unacked)", DETACHED, len(self._delivered))
            self._delivered.clear()
            return
        super().restore_unacked(client)

    def ack(self, delivery_tag: Any) -> None:
        if self._detached():
            raise RedisConnectionError(DETACHED)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        if self._detached():
            raise RedisConnectionError(DETACHED)
        super().reject(delivery_tag, requeue=requeue)


class Channel(kombu_redis.Channel):
    QoS = QoS


class Transport(kombu_redis.Transport):
    """Selected by ``CELERY_BROKER_TRANSPORT`` whenever the broker is Redis."""

    Channel = Channel
