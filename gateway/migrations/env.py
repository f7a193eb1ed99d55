from sqlmodel import SQLModel

from gateway.models import *  # noqa: F403
from kernel.migrations_env import run

run(SQLModel.metadata)
