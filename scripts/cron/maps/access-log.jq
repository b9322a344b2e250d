# JSON API access logs -> gr-classify interaction records.
#
#   gr-classify --map "$(cat scripts/cron/maps/access-log.jq)" access.log
#
# One JSON object per request, as nginx (log_format escape=json), Envoy, Kong
# or an API gateway write them: an id (`request_id`, `id`, `requestId`,
# `trace_id`), the method (`method`, `request_method`, `request.method`), and
# the bodies (`request_body` / `request.body`, `response_body` /
# `response.body`), each a JSON object or a string holding JSON or plain text.
# The prompt is the request body's `prompt`, `input`, `query` or `question`
# field, or the last user turn of its `messages`, or a plain-text body itself;
# the response is the response body's `completion`, `output`, `text`,
# `answer`, first choice (`choices[0].message.content` / `choices[0].text`),
# or a plain-text body; null when the request has no response body.
# Requests that carry no body (GET, HEAD, OPTIONS, DELETE) hold nothing to
# moderate and give no record; a request with a body but no prompt in it is
# an error naming why (gr-classify reports it with file:line; --rejects
# collects it).
# (the try sits inside [...]: jq 1.6's try also catches errors raised later in
# the pipeline, which would turn "no prompt" below into a plain-text body)
def body: if type == "string" then (. as $s | [try fromjson catch $s] | .[0]) else . end;
def message_text:
  if type == "string" then .
  elif type == "array" then [.[] | select(type == "object" and .type == "text") | .text | strings] | join("\n")
  else null end;
def prompt_of:
  if type == "string" then (if . == "" then null else . end)
  elif type == "object" then
    ([.prompt, .input, .query, .question] | map(select(type == "string")) | first)
    // ((.messages // []) | if type == "array" then [.[] | select(type == "object" and .role == "user")] | last | (.content // null) | message_text else null end)
  else null end;
def reply_of:
  if type == "string" then (if . == "" then null else . end)
  elif type == "object" then
    ([.completion, .output, .text, .answer] | map(select(type == "string")) | first)
    // ((.choices // []) | if type == "array" and length > 0 then (.[0] | (.message.content | message_text) // .text) else null end)
  else null end;
((.method // .request_method // .request.method // "POST") | ascii_upcase) as $method
| (.request_body // .request.body) as $req
| if ($method | IN("GET", "HEAD", "OPTIONS", "DELETE")) or $req == null or $req == "" or $req == "-" then empty else . end
| ($req | body | prompt_of) as $prompt
| if $prompt == null then error("no prompt in the request body (prompt, input, query, question or messages)") else . end
| ((.response_body // .response.body) | if . == null or . == "" or . == "-" then null else (body | reply_of) end) as $reply
| ((.request_id // .id // .requestId // .trace_id) | if type == "string" or type == "number" then . else null end) as $id
| {prompt: $prompt, response: $reply} + (if $id != null then {id: $id} else {} end)
