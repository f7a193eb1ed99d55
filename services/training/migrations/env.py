from sqlmodel import SQLModel

from kernel.migrations_env import run
from services.training.models import *  # noqa: F401,F403

run(SQLModel.metadata)
