"""tags as JSONB on PostgreSQL (tag filters in the database); the outbox keeps each event's trace ids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('correlation_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('traceparent', sa.String(length=55), nullable=True))
    # Events still waiting to be published get their ids from the payload they carry.
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('tasks', 'tags', type_=postgresql.JSONB(), postgresql_using='tags::jsonb')
        op.execute("UPDATE outbox_events SET correlation_id = payload::jsonb->>'correlationid', "
                   "traceparent = payload::jsonb->>'traceparent' WHERE published_at IS NULL")
    else:
        op.execute("UPDATE outbox_events SET correlation_id = json_extract(payload, '$.correlationid'), "
                   "traceparent = json_extract(payload, '$.traceparent') WHERE published_at IS NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('tasks', 'tags', type_=sa.JSON(), postgresql_using='tags::json')
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
        batch_op.drop_column('correlation_id')
