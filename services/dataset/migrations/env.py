from sqlmodel import SQLModel

from kernel.migrations_env import run
from services.dataset.models import *  # noqa: F403 - registers the tables

run(SQLModel.metadata)
