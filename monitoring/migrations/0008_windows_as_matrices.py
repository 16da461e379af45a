# The lag windows are stored as the bytes of each cluster's offset matrices instead of JSON text.
# Rows stored before keep their JSON, now as UTF-8 bytes, which the collector still reads (and
# rewrites as matrices at the cluster's next collection).
#
# On PostgreSQL the column changes type with convert_to(): Django's own cast (text::bytea) would read
# the JSON's backslash escapes as bytea escapes. The column keeps lz4 compression where available.
# Going back empties the windows (matrices are not text); the next collections fill them again.

from django.db import migrations, models


def text_to_bytes(apps, schema_editor):
    _change_type(apps, schema_editor, "bytea USING convert_to(windows, 'UTF8')", models.BinaryField())


def bytes_to_text(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _change_type(apps, schema_editor, "text USING ''", models.TextField())
    else:  # SQLite keeps the column as it is: emptied, it reads as text again
        schema_editor.execute("UPDATE monitoring_lagstate SET windows = ''")


def _change_type(apps, schema_editor, postgresql_type, field):
    LagState = apps.get_model("monitoring", "LagState")
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        field.set_attributes_from_name("windows")
        schema_editor.alter_field(LagState, LagState._meta.get_field("windows"), field)
        return
    schema_editor.execute(f"ALTER TABLE monitoring_lagstate ALTER COLUMN windows TYPE {postgresql_type}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    if row and row[0]:
        schema_editor.execute("ALTER TABLE monitoring_lagstate ALTER COLUMN windows SET COMPRESSION lz4")


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0007_broker_throughput'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='lagstate',
                    name='windows',
                    field=models.BinaryField(),
                ),
            ],
            database_operations=[migrations.RunPython(text_to_bytes, bytes_to_text)],
        ),
    ]
