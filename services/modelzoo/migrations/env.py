from sqlmodel import SQLModel

from kernel.migrations_env import run
from services.modelzoo.models import *  # noqa: F403 - registers the tables

run(SQLModel.metadata)
