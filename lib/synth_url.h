/* The endpoint URL of gr-synth: built from the base URL the user gives, shown
 * without its secrets, and the secrets themselves (the API key, the URL's
 * password, its query values) cut out of anything gr-synth prints or writes
 * to the rejects file, since a server may echo them. */
#ifndef SYNTH_URL_H
#define SYNTH_URL_H
#include <stddef.h>
#include "gr_common.h"

/* The chat-completions URL of a base URL: "/chat/completions" is appended to
 * the path (trailing slashes cut), before any "?query" or "#fragment", unless
 * the path already ends in it. Malloc'd. */
char *synth_url_build(const char *endpoint);
/* url with its userinfo shown as "***@" and every query value as "***"
 * ("?api-version=***&key=***"); the fragment is cut. Malloc'd. */
char *synth_url_redacted(const char *url);

/* Strings never to be printed. */
typedef struct synth_secrets {
    char **v;
    size_t n;
} synth_secrets;
/* Adds s (ignored when shorter than 4 bytes: too likely to occur by chance). */
void synth_secrets_add(synth_secrets *s, const char *str);
/* Adds the URL's user, password and query values, as written and percent-decoded:
 * the password from 4 bytes, the user and query values from 8 (shorter ones,
 * "api-version=1" or "user", would cut ordinary words out of the answers; the
 * URL itself is always shown without them). */
void synth_secrets_add_url(synth_secrets *s, const char *url);
/* Replaces every occurrence of a secret in b by "***" (longest secrets first,
 * so a secret that contains another goes whole). */
void synth_secrets_redact(const synth_secrets *s, gr_buf *b);
/* The same on a NUL-terminated string, in place (it only gets shorter). */
void synth_secrets_redact_str(const synth_secrets *s, char *msg);
void synth_secrets_free(synth_secrets *s);
#endif
