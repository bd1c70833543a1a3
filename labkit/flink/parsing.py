"""How the job reads a message: its shape, its three fields, and its event time.

A message in the sensors' own shape (``SENSOR_JSON``) is split at its quotes, which is cheap;
any other text goes through Flink's JSON functions, which parse the whole message again on
each call. Either way each field comes out as JSON text in brackets, so that the checks can
tell a string (``["TH1"]``) from a number (``[20.5]``), an object or an array.
"""

from __future__ import annotations

from labkit.flink.sql import statement

TIME_FORMAT = "yyyy-MM-dd HH:mm:ss"
NO_TIME = "TIMESTAMP '1970-01-01 00:00:00'"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # a JSON number: -1E+400
NUMBER_JSON = rf"^\[{_NUMBER}\]$"  # ... in brackets, as JSON_QUERY writes it: [20.5]
_TEXT = r'"[^"\\\x00-\x1f]*"'  # a JSON string without escapes (nor control characters)
# The message as the sensors write it: these three fields in this order, a JSON number, and
# strings without escapes, so that any text of this shape is JSON and reads as it is split.
# Split at its quotes, it has the name as its part 3, the value (between a colon and a comma)
# as part 6 and the time as part 9.
SENSOR_JSON = rf'^\{{"m_name": ?{_TEXT}, ?"m_value": ?{_NUMBER}, ?"m_timestamp": ?{_TEXT}\}}$'
STRICT_TIME = "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"
NAME_PART, VALUE_PART, TIME_PART = 3, 6, 9


def split_part(text: str, part: int) -> str:
    """Part ``part`` of a message in the sensors' shape, split at its quotes."""
    piece = f"SPLIT_INDEX({text}, '\"', {part})"
    # The value sits between a colon and a comma.
    return f"TRIM(BOTH ' :,' FROM {piece})" if part == VALUE_PART else piece


def event_time(text: str) -> str:
    """The event time the source trusts for the message ``text`` (an expression).

    A well-formed m_timestamp (split out of the sensors' shape, or read as JSON), capped at
    the send time; 1970 when there is none.
    """
    split_time = split_part(text, TIME_PART)
    json_time = f"JSON_VALUE({text}, '$.m_timestamp')"
    return statement(
        f"""
        COALESCE(LEAST(
            CASE
              WHEN REGEXP({text}, '{SENSOR_JSON}')
               AND REGEXP({split_time}, '{STRICT_TIME}')
                THEN TO_TIMESTAMP({split_time}, '{TIME_FORMAT}')
              WHEN REGEXP({json_time}, '{STRICT_TIME}')
                THEN TO_TIMESTAMP({json_time}, '{TIME_FORMAT}')
            END,
            CAST(sent_at AS TIMESTAMP(3))),
          {NO_TIME})
        """
    )


def _field_json(field: str, part: int, before: str, after: str) -> str:
    """A field as bracketed JSON text: split out when the message has the sensors' shape."""
    return (
        f"CASE WHEN m.sensor_shape\n"
        f"  THEN '{before}' || {split_part('m.message', part)} || '{after}'\n"
        f"  ELSE JSON_QUERY(m.message, '$.{field}' WITH UNCONDITIONAL ARRAY WRAPPER) END"
    )


def parsed_view() -> str:
    """``input_parsed``: each message decoded, with its three fields as bracketed JSON text."""
    name = _field_json("m_name", NAME_PART, '["', '"]')
    value = _field_json("m_value", VALUE_PART, "[", "]")
    stamp = _field_json("m_timestamp", TIME_PART, '["', '"]')
    fields = ",\n".join((name, value, stamp)).replace("\n", "\n  ")
    return f"""\
SELECT m.*, f.*
FROM (
  SELECT body, message, kafka_partition, kafka_offset, sent_at, ts,
         REGEXP(message, '{SENSOR_JSON}') AS sensor_shape
  FROM (
    SELECT body, DECODE(body, 'UTF-8') AS message, kafka_partition, kafka_offset,
           CAST(sent_at AS TIMESTAMP(3)) AS sent_at, ts
    FROM input_messages
  )
) AS m
-- Each field as JSON text in brackets, NULL when absent or null: ["TH1"] is a
-- string, [20.5] a number, [{{...}}] an object, [["TH1"]] an array. Messages in
-- the sensors' own shape are split at their quotes; any other shape goes through
-- Flink's JSON functions (slower: each call parses the whole message again).
-- The one-row UNNEST makes Flink compute these once per message: columns of a
-- plain sub-query would be computed again wherever the later views use them.
CROSS JOIN UNNEST(ARRAY[ROW(
  {fields}
)]) AS f (name_json, value_json, time_json)"""


def fields_view() -> str:
    """``input_fields``: the fields as SQL values, NULL where the JSON type is wrong."""
    return statement(
        f"""
        SELECT *,
          CASE WHEN name_json LIKE '["%"]'
            THEN SUBSTRING(name_json FROM 3 FOR CHAR_LENGTH(name_json) - 4) END AS m_name,
          CASE WHEN REGEXP(value_json, '{NUMBER_JSON}')
            THEN CAST(SUBSTRING(value_json FROM 2 FOR CHAR_LENGTH(value_json) - 2) AS DOUBLE)
          END AS m_value,
          CASE WHEN time_json LIKE '["%"]'
            THEN SUBSTRING(time_json FROM 3 FOR CHAR_LENGTH(time_json) - 4) END AS m_timestamp
        FROM input_parsed
        """
    )
