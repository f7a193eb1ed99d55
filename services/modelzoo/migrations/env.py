from sqlmodel import SQLModel

from services.common.migrations_env import run
from services.modelzoo.models import *  # noqa: F403 - registers the tables

run(SQLModel.metadata)
