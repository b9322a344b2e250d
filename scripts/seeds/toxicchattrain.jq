# ToxicChatTrain (lmsys/toxic-chat, config toxicchat0124, train: 5,082 rows) ->
# gr-synth interaction records. Use: gr-synth --map "$(cat scripts/seeds/toxicchattrain.jq)"
# ToxicChat labels the user input only (toxicity 1 = harmful, 0 = unharmful);
# the model output is not labelled, so it is left out (response None), as in
# the ToxicChat benchmark. conv_id becomes the id.
(.toxicity | tostring) as $t
| {
    prompt: .user_input,
    response: null,
    label: {
      request: (if $t == "1" then "harmful" elif $t == "0" then "unharmful" else null end),
      completion: null,
      response: null
    }
  }
+ (if .conv_id != null then {id: .conv_id} else {} end)
