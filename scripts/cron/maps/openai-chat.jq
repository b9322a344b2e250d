# OpenAI-style chat logs -> gr-classify interaction records.
#
#   gr-classify --map "$(cat scripts/cron/maps/openai-chat.jq)" chat.jsonl
#
# A line holds a chat-completions request: `messages` at the top level, or
# under `request` or `body` (the Batch API's input lines, proxy logs), and
# perhaps its completion (`response.choices`, `response.body.choices` or
# `choices`). The prompt is the last user turn; the response is the first
# assistant turn after it in `messages`, else the logged completion's first
# choice, else null (a request not yet answered: the guard judges the request
# alone). Content given as parts keeps its text parts, joined by "\n"; an
# assistant turn that only calls tools reads as "name(arguments)" lines. The
# record's id is `id`, `custom_id` or `request_id` when the line has one.
# A line without a messages array or without a user turn is an error naming
# why (gr-classify reports it with file:line; --rejects collects it).
def text:
  if type == "string" then .
  elif type == "array" then [.[] | select(type == "object" and .type == "text") | .text | strings] | join("\n")
  elif . == null then null
  else error("content is neither a string nor an array of parts") end;
def turn_text:
  (.content | text) as $t
  | if ($t // "") != "" then $t
    elif (.tool_calls | type) == "array" and (.tool_calls | length) > 0 then
      [.tool_calls[] | "\(.function.name // "tool")(\(.function.arguments // ""))"] | join("\n")
    else $t end;
(.messages // .request.messages // .body.messages) as $m
| if ($m | type) != "array" then error("no messages array (messages, request.messages or body.messages)") else . end
| ([$m | to_entries[] | select(.value | type == "object" and .role == "user") | .key] | last) as $u
| if $u == null then error("no user turn in messages") else . end
| ($m[$u] | turn_text) as $prompt
| if ($prompt | type) != "string" then error("the last user turn has no text") else . end
| ([$m[$u + 1:][] | select(type == "object" and .role == "assistant")] | first) as $after
| (if $after != null then $after
   else (.response.choices // .response.body.choices // .choices // [])
        | if type == "array" then (first | .message // null) else null end
   end) as $reply
| ((.id // .custom_id // .request_id) | if type == "string" or type == "number" then . else null end) as $id
| {prompt: $prompt, response: (if $reply == null then null else ($reply | turn_text) end)}
  + (if $id != null then {id: $id} else {} end)
