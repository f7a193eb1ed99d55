"""initial: imported weights

Revision ID: 0001
Revises:
Create Date: 2026-01-01

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('modelzoo_weights',
    sa.Column('model_id', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
    sa.Column('bucket', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('model_id')
    )
    op.create_index(op.f('ix_modelzoo_weights_sha256'), 'modelzoo_weights', ['sha256'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_modelzoo_weights_sha256'), table_name='modelzoo_weights')
    op.drop_table('modelzoo_weights')
