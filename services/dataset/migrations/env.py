from sqlmodel import SQLModel

from services.common.migrations_env import run
from services.dataset.models import *  # noqa: F403 - registers the tables

run(SQLModel.metadata)
