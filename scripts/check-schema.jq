# A JSON Schema checker in jq, for the subset the project's schema files use
# (man/gr-verdict.schema.json): type (a name or a list), enum, const, required,
# properties, additionalProperties (true, false or a schema), items, minimum,
# maximum, minLength, pattern, not, allOf, anyOf, oneOf, if/then/else and
# "$ref": "#/..." within the file. Other keywords are annotations (title,
# description, $schema, $id, $comment, examples) or unsupported: an unknown
# keyword is itself reported, so the schema cannot silently use more than is
# checked.
#
#   jq -n -c --slurpfile schema man/gr-verdict.schema.json -f scripts/check-schema.jq verdicts.jsonl
#
# prints one line {"record": N, "errors": ["/path: why", ...]} per record that
# does not conform (N counts records from 1), and nothing for one that does.
def known: ["type", "enum", "const", "required", "properties", "additionalProperties", "items",
            "minimum", "maximum", "minLength", "pattern", "not", "allOf", "anyOf", "oneOf",
            "if", "then", "else", "$ref", "$defs", "title", "description", "$schema", "$id",
            "$comment", "examples"];
def is_type($t):
  if $t == "integer" then type == "number" and . == (. | floor)
  else type == $t end;
def ptr($p): if $p == "" then "/" else $p end;
# errors of . against schema $s (at JSON pointer $p), with $root for $ref
def check($s; $p; $root):
  . as $v
  | if ($s | type) == "boolean" then (if $s then [] else ["\(ptr($p)): not allowed here"] end)
    elif $s["$ref"] != null then
      ($s["$ref"] | ltrimstr("#/") | split("/")) as $path
      | ($root | getpath($path)) as $t
      | if $t == null then ["\(ptr($p)): unresolved $ref \($s["$ref"])"] else $v | check($t; $p; $root) end
    else
      ([$s | keys[] | select(. as $k | known | index([$k]) | not)] | map("\(ptr($p)): schema keyword \(.) is not supported by check-schema.jq"))
      + (if $s.type == null then []
         elif ($s.type | type) == "array" then
           (if any($s.type[]; . as $t | $v | is_type($t)) then [] else ["\(ptr($p)): \($v | type), wanted \($s.type | join(" or "))"] end)
         elif ($v | is_type($s.type)) then [] else ["\(ptr($p)): \($v | type), wanted \($s.type)"] end)
      + (if $s.enum == null or ($s.enum | index([$v])) then [] else ["\(ptr($p)): \($v | tojson) is not one of \($s.enum | tojson)"] end)
      + (if ($s | has("const")) and $s.const != $v then ["\(ptr($p)): \($v | tojson) is not \($s.const | tojson)"] else [] end)
      + (if ($v | type) != "number" then []
         else (if $s.minimum != null and $v < $s.minimum then ["\(ptr($p)): \($v) < minimum \($s.minimum)"] else [] end)
            + (if $s.maximum != null and $v > $s.maximum then ["\(ptr($p)): \($v) > maximum \($s.maximum)"] else [] end) end)
      + (if ($v | type) != "string" then []
         else (if $s.minLength != null and ($v | length) < $s.minLength then ["\(ptr($p)): shorter than \($s.minLength)"] else [] end)
            + (if $s.pattern != null and ($v | test($s.pattern) | not) then ["\(ptr($p)): \($v | tojson) does not match \($s.pattern)"] else [] end) end)
      + (if ($v | type) != "object" then []
         else ([($s.required // [])[] | select(. as $k | $v | has($k) | not) | "\(ptr($p)): missing required field \(.)"])
            + ([($s.properties // {}) | to_entries[] | select(.key as $k | $v | has($k))
                | .key as $k | .value as $sub | $v[$k] | check($sub; "\($p)/\($k)"; $root)[]])
            + (if $s | has("additionalProperties") then
                 [$v | keys[] | select(. as $k | ($s.properties // {}) | has($k) | not)
                  | . as $k | $v[$k] | check($s.additionalProperties; "\($p)/\($k)"; $root)[]]
               else [] end) end)
      + (if ($v | type) != "array" or $s.items == null then []
         else [range(0; $v | length) as $i | $v[$i] | check($s.items; "\($p)/\($i)"; $root)[]] end)
      + (if $s.not == null then [] elif ($v | check($s.not; $p; $root) | length) == 0 then ["\(ptr($p)): matches a schema it must not"] else [] end)
      + (if $s.allOf == null then [] else [$s.allOf[] as $sub | $v | check($sub; $p; $root)[]] end)
      + (if $s.anyOf == null then []
         elif any($s.anyOf[]; . as $sub | $v | check($sub; $p; $root) | length == 0) then []
         else ["\(ptr($p)): matches none of anyOf"] end)
      + (if $s.oneOf == null then []
         else ([$s.oneOf[] as $sub | $v | check($sub; $p; $root) | select(length == 0)] | length) as $n
              | if $n == 1 then [] else ["\(ptr($p)): matches \($n) of oneOf, wanted 1"] end end)
      + (if $s["if"] == null then []
         elif ($v | check($s["if"]; $p; $root) | length) == 0 then (if $s["then"] == null then [] else $v | check($s["then"]; $p; $root) end)
         else (if $s["else"] == null then [] else $v | check($s["else"]; $p; $root) end) end)
    end;
# "record" counts the records of the input, from 1
foreach inputs as $rec (0; . + 1;
  ($rec | check($schema[0]; ""; $schema[0])) as $e
  | if ($e | length) > 0 then {record: ., errors: $e} else empty end)
