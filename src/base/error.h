/* SPDX-License-Identifier: Apache-2.0 */
/* The one way library code hands a sentence for a person to its caller: an optional char **ret_error. */
#pragma once

#include "base/macro.h"

/* When ret_error is not NULL, sets *ret_error to the formatted sentence (freeing one already there).
 * Returns r, so that `return error_set(ret_error, -EINVAL, "...", ...);` reads as one step. */
int error_set(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
