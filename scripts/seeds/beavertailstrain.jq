# BeaverTailsTrain (PKU-Alignment/BeaverTails, split 30k_train: 27,186 rows) ->
# gr-synth interaction records. Use: gr-synth --map "$(cat scripts/seeds/beavertailstrain.jq)"
# BeaverTails labels the question-answer pair: is_safe is the harmfulness of
# the response; the request and refusal tasks are unlabelled (None).
def safe: if . == true or . == "True" or . == "true" then true
          elif . == false or . == "False" or . == "false" then false else null end;
(.is_safe | safe) as $s
| {
    prompt: .prompt,
    response: .response,
    label: {
      request: null,
      completion: null,
      response: (if $s == true then "unharmful" elif $s == false then "harmful" else null end)
    }
  }
