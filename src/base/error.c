/* SPDX-License-Identifier: Apache-2.0 */
#include "base/error.h"

#include <stdarg.h>

int error_set(char **ret_error, int r, const char *fmt, ...)
{
        if (!ret_error)
                return r;
        char *s = format_va(fmt);
        free(*ret_error);
        *ret_error = s;
        return r;
}
