# AegisTrain (nvidia/Aegis-AI-Content-Safety-Dataset-1.0, train: 10,798 rows) ->
# gr-synth interaction records. Use: gr-synth --map "$(cat scripts/seeds/aegistrain.jq)"
# Every row is taken as a user prompt (the paper's AegisTrain-R keeps all
# 10,798). The annotators' labels_0..labels_N are a majority vote: a row is
# unharmful when more than half of its non-empty votes are "Safe"; any other
# category ("Needs Caution", "Violence", ...) is a vote for harmful, and a tie
# is harmful. A row without votes gets no label (gr-synth skips it, counted).
[to_entries[] | select(.key | test("^labels_[0-9]+$")) | .value
  | select(. != null) | tostring | select(. != "")] as $votes
| ([$votes[] | select(ascii_downcase | ltrimstr(" ") | rtrimstr(" ") == "safe")] | length) as $safe
| {
    prompt: .text,
    response: null,
    label: {
      request: (if ($votes | length) == 0 then null
                elif $safe * 2 > ($votes | length) then "unharmful" else "harmful" end),
      completion: null,
      response: null
    }
  }
+ (if .id != null then {id: .id} else {} end)
