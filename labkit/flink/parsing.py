"""How the job reads a message: its shape, its three fields, and its event time.

A message exactly as the sensors write it (``SENSOR_JSON``) has its fields at known places:
they are cut out, which costs about what copying them does. Any other text goes through
Flink's JSON functions, which parse the whole message again on each call; they give each field
as JSON text in brackets, so that the checks can tell a string (``["TH1"]``) from a number
(``[20.5]``), an object or an array.
"""

from __future__ import annotations

from labkit.flink.sql import statement

TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
NO_TIME = "TIMESTAMP '1970-01-01 00:00:00'"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # a JSON number: -1E+400
NUMBER_JSON = rf"^\[{_NUMBER}\]$"  # ... in brackets, as JSON_QUERY writes it: [20.5]
_TIME = "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
STRICT_TIME = f"^{_TIME}$"
# The message as the sensors write it: these three fields in this order and this spacing, a
# name of printable ASCII without quotes or backslashes, a JSON number, a well-formed time, and
# nothing after it (\z: not even a line end). Text of this shape is JSON, valid UTF-8, and
# reads as it is cut: the name from character 13 to the next quote, the value from 14
# characters after that quote to 39 characters before the end, and the time 20 characters
# before the end:
#   {"m_name": "TH1", "m_value": 20.5, "m_timestamp": "2024-01-05 10:15:00"}
SENSOR_JSON = (
    r'^\{"m_name": "[ !#-\[\]-~]*", "m_value": ' + _NUMBER + r', "m_timestamp": "' + _TIME
    + r'"\}\z'
)  # fmt: skip


def _name_end(text: str) -> str:
    return f"LOCATE('\"', {text}, 13)"


def shaped_name(text: str) -> str:
    """The name of a message in the sensors' shape (an expression)."""
    return f"SUBSTRING({text} FROM 13 FOR {_name_end(text)} - 13)"


def shaped_value(text: str) -> str:
    """The value, as text, of a message in the sensors' shape."""
    end = _name_end(text)
    return f"SUBSTRING({text} FROM {end} + 14 FOR CHAR_LENGTH({text}) - {end} - 52)"


def shaped_time(text: str) -> str:
    """The time, as text, of a message in the sensors' shape."""
    return f"SUBSTRING({text} FROM CHAR_LENGTH({text}) - 20 FOR 19)"


def event_time(text: str) -> str:
    """The event time the source trusts for the message ``text`` (an expression).

    A well-formed m_timestamp (cut out of the sensors' shape, or read as JSON), capped at
    the send time; 1970 when there is none.
    """
    json_time = f"JSON_VALUE({text}, '$.m_timestamp')"
    return statement(
        f"""
        COALESCE(LEAST(
            CASE
              WHEN REGEXP({text}, '{SENSOR_JSON}')
                THEN TO_TIMESTAMP({shaped_time(text)}, '{TIME_FORMAT}')
              WHEN REGEXP({json_time}, '{STRICT_TIME}')
                THEN TO_TIMESTAMP({json_time}, '{TIME_FORMAT}')
            END,
            CAST(sent_at AS TIMESTAMP(3))),
          {NO_TIME})
        """
    )


def _json_field(field: str) -> str:
    return (
        f"CASE WHEN NOT m.sensor_shape\n"
        f"  THEN JSON_QUERY(m.message, '$.{field}' WITH UNCONDITIONAL ARRAY WRAPPER) END"
    )


def parsed_view() -> str:
    """``input_parsed``: each message decoded, with its three fields: cut out of the sensors'
    shape, or else as bracketed JSON text."""
    shaped = [
        f"CASE WHEN m.sensor_shape THEN {shaped_name('m.message')} END",
        f"CASE WHEN m.sensor_shape THEN CAST({shaped_value('m.message')} AS DOUBLE) END",
        f"CASE WHEN m.sensor_shape THEN {shaped_time('m.message')} END",
    ]
    json = [_json_field(field) for field in ("m_name", "m_value", "m_timestamp")]
    fields = ",\n".join(shaped + json).replace("\n", "\n  ")
    return f"""\
SELECT m.*, f.*
FROM (
  SELECT body, kafka_partition, kafka_offset, sent_at, ts, arrival, sensor_shape,
         -- Text of the sensors' shape is ASCII: its bytes are its text, without decoding.
         CASE WHEN sensor_shape THEN text ELSE DECODE(body, 'UTF-8') END AS message
  FROM (
    SELECT body, text, REGEXP(text, '{SENSOR_JSON}') AS sensor_shape,
           kafka_partition, kafka_offset, CAST(sent_at AS TIMESTAMP(3)) AS sent_at, ts, arrival
    FROM (SELECT *, CAST(body AS STRING) AS text FROM input_messages)
  )
) AS m
-- In the sensors' shape, the fields as they are. Any other text through Flink's JSON
-- functions (slower: each call parses the whole message again): each field as JSON text in
-- brackets, NULL when absent or null: ["TH1"] is a string, [20.5] a number, [{{...}}] an
-- object, [["TH1"]] an array.
-- The one-row UNNEST makes Flink compute these once per message: columns of a plain
-- sub-query would be computed again wherever the later views use them.
CROSS JOIN UNNEST(ARRAY[ROW(
  {fields}
)]) AS f (shaped_name, shaped_value, shaped_time, name_json, value_json, time_json)"""


def fields_view() -> str:
    """``input_fields``: the fields as SQL values, NULL where absent or of the wrong JSON type;
    ``*_found`` tells absent from mistyped."""
    return statement(
        f"""
        SELECT *,
          sensor_shape OR name_json IS NOT NULL AS name_found,
          sensor_shape OR value_json IS NOT NULL AS value_found,
          sensor_shape OR time_json IS NOT NULL AS time_found,
          CASE WHEN sensor_shape THEN shaped_name
            WHEN name_json LIKE '["%"]'
            THEN SUBSTRING(name_json FROM 3 FOR CHAR_LENGTH(name_json) - 4) END AS m_name,
          CASE WHEN sensor_shape THEN shaped_value
            WHEN REGEXP(value_json, '{NUMBER_JSON}')
            THEN CAST(SUBSTRING(value_json FROM 2 FOR CHAR_LENGTH(value_json) - 2) AS DOUBLE)
          END AS m_value,
          CASE WHEN sensor_shape THEN shaped_time
            WHEN time_json LIKE '["%"]'
            THEN SUBSTRING(time_json FROM 3 FOR CHAR_LENGTH(time_json) - 4) END AS m_timestamp
        FROM input_parsed
        """
    )
