#include "dataurl.h"

#include <stdbool.h>
#include <stddef.h>
#include <strings.h>
#include <string.h>

static bool is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Standard base64 with padding, as Go's encoding/json decodes []byte (which
 * skips CR and LF). */
static bool valid_base64(const char *s)
{
    size_t n = 0, pad = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
        } else if (!is_b64(c) || pad) {
            return false;
        }
        n++;
    }
    return n > 0 && n % 4 == 0 && pad <= 2;
}

const char *dataurl_image(const char *url, const char *param, struct apierr *err)
{
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
        apierr_invalid(err, param,
                       "Image URLs are not supported by this gateway (it does not fetch "
                       "them); send the image inline as a base64 data URL, e.g. "
                       "data:image/png;base64,....");
        return NULL;
    }
    if (strncasecmp(url, "data:", 5) != 0) {
        apierr_invalid(err, param,
                       "Invalid image URL: expected a base64 data URL such as "
                       "data:image/png;base64,....");
        return NULL;
    }
    const char *meta = url + 5;
    const char *b64 = strstr(meta, ";base64,");
    if (!b64) {
        apierr_invalid(err, param,
                       "Invalid image data URL: only ;base64, data URLs are supported.");
        return NULL;
    }
    if (b64 != meta && strncasecmp(meta, "image/", 6) != 0) {
        apierr_invalid(err, param, "Invalid image data URL: the media type must be image/*.");
        return NULL;
    }
    const char *payload = b64 + 8;
    if (!valid_base64(payload)) {
        apierr_invalid(err, param, "Invalid image data URL: the data is not valid base64.");
        return NULL;
    }
    return payload;
}
