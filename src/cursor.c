/* Feed cursors and feed timestamps: parse and format. */
#include "cursor.h"

#include <stdio.h>
#include <string.h>

#define US_PER_SEC  1000000LL
#define SEC_PER_DAY 86400LL

/* Feed text has four-digit years (Python's datetime, ISO-8601 basic range):
 * anything a cursor may name lies in [0000-01-01, 9999-12-31T23:59:59.999999]. */
#define DAYS_0000_01_01  (-719528LL)
#define DAYS_10000_01_01 2932897LL
#define US_MIN           (DAYS_0000_01_01 * SEC_PER_DAY * US_PER_SEC)
#define US_END           (DAYS_10000_01_01 * SEC_PER_DAY * US_PER_SEC)

/* Pydantic (speedate) reads an all-digits value above this as milliseconds. */
#define UNIX_MS_WATERSHED 20000000000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil): pure arithmetic, so no TZ or timegm() range enters. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int64_t y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

int
cursor_format_time(int64_t us, bool zulu, char *out, size_t outlen)
{
	int64_t secs, frac, days, rem, y;
	int m, d, n;

	if (us < US_MIN || us >= US_END)
		return -1;
	/* Floor division: a time before 1970 still has a non-negative fraction. */
	secs = us / US_PER_SEC;
	frac = us % US_PER_SEC;
	if (frac < 0) {
		frac += US_PER_SEC;
		secs--;
	}
	days = secs / SEC_PER_DAY;
	rem = secs % SEC_PER_DAY;
	if (rem < 0) {
		rem += SEC_PER_DAY;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	if (frac != 0)
		n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06d%s", (int)y, m, d,
		             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac,
		             zulu ? "Z" : "+00:00");
	else
		n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d%s", (int)y, m, d,
		             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
		             zulu ? "Z" : "+00:00");
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

int
cursor_parse_i64(const char *s, int64_t *out)
{
	uint64_t v = 0, lim;
	bool neg = false;

	if (s == NULL)
		return -1;
	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s == '\0')
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; *s != '\0'; s++) {
		unsigned dg;

		if (*s < '0' || *s > '9')
			return -1;
		dg = (unsigned)(*s - '0');
		if (v > (lim - dg) / 10)
			return -1;
		v = v * 10 + dg;
	}
	/* -(v - 1) - 1 avoids negating INT64_MIN's magnitude in signed type. */
	*out = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
	return 0;
}

/* Reads exactly n digits at s[*i..]; -1 when any is not a digit. */
static int
digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0;

	if (len - *i < (size_t)n)
		return -1;
	for (int k = 0; k < n; k++) {
		char c = s[*i + k];

		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*i += (size_t)n;
	return v;
}

static bool
all_digits(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Unix time as pydantic reads an all-digits datetime: seconds, or
 * milliseconds above the watershed. */
static int
parse_unix(const char *s, size_t len, int64_t *us, const char **why)
{
	int64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (v > (INT64_MAX - 9) / 10) {
			*why = "cursor Unix time is out of range";
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	if (v > UNIX_MS_WATERSHED) {
		if (v >= US_END / 1000) {
			*why = "cursor Unix time is out of range";
			return -1;
		}
		*us = v * 1000;
	} else {
		*us = v * US_PER_SEC;
	}
	return 0;
}

/* Offset after the time: "", Z, z, +HH:MM, -HH:MM, +HHMM, +HH, and " HH:MM"
 * (a '+' that a query string decoded to a space).  Seconds east of UTC. */
static int
parse_offset(const char *s, size_t len, size_t i, int64_t *off, const char **why)
{
	int sign, hh, mm = 0;

	*off = 0;
	if (i == len)
		return 0;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == len)
		return 0;
	if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '-' ? -1 : 1;
		i++;
		if ((hh = digits(s, len, &i, 2)) < 0)
			goto bad;
		if (i < len) {
			if (s[i] == ':')
				i++;
			if ((mm = digits(s, len, &i, 2)) < 0)
				goto bad;
		}
	} else if (s[i] == ' ' && len - i == 6) {
		/* Only the unambiguous shape " HH:MM" at the very end. */
		sign = 1;
		i++;
		if ((hh = digits(s, len, &i, 2)) < 0 || s[i++] != ':' ||
		    (mm = digits(s, len, &i, 2)) < 0)
			goto bad;
	} else {
		goto bad;
	}
	if (i != len)
		goto bad;
	if (hh > 23 || mm > 59) {
		*why = "cursor time offset is out of range";
		return -1;
	}
	*off = sign * (hh * 3600LL + mm * 60LL);
	return 0;
bad:
	*why = "cursor time is not an ISO-8601 timestamp";
	return -1;
}

/* ".f{1,6}" at s[*i] as microseconds; a 7th digit is refused rather than
 * rounded, since rounding could move the cursor across an item. */
static int
parse_fraction(const char *s, size_t len, size_t *i, int *frac, const char **why)
{
	int n = 0, v = 0;

	for ((*i)++; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		if (++n > 6) {
			*why = "cursor time has more than 6 fraction digits";
			return -1;
		}
		v = v * 10 + (s[*i] - '0');
	}
	if (n == 0)
		return -1;
	while (n++ < 6)
		v *= 10;
	*frac = v;
	return 0;
}

static int
parse_time(const char *s, size_t len, int64_t *out, const char **why)
{
	size_t i = 0;
	int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
	int64_t off = 0, us;

	if (all_digits(s, len))
		return parse_unix(s, len, out, why);

	*why = "cursor time is not an ISO-8601 timestamp";
	if ((y = digits(s, len, &i, 4)) < 0 || i >= len || s[i++] != '-' ||
	    (mo = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != '-' ||
	    (d = digits(s, len, &i, 2)) < 0)
		return -1;
	if (i < len) {
		if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
			return -1;
		i++;
		if ((h = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
		    (mi = digits(s, len, &i, 2)) < 0)
			return -1;
		if (i < len && s[i] == ':') {
			i++;
			if ((sec = digits(s, len, &i, 2)) < 0)
				return -1;
			if (i < len && s[i] == '.' && parse_fraction(s, len, &i, &frac, why) < 0)
				return -1;
		}
		if (parse_offset(s, len, i, &off, why) < 0)
			return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 59) {
		*why = "cursor date or time is out of range";
		return -1;
	}
	us = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600LL + mi * 60LL + sec - off;
	us = us * US_PER_SEC + frac;
	if (us < US_MIN || us >= US_END) {
		*why = "cursor time is out of range";
		return -1;
	}
	*out = us;
	return 0;
}

int
cursor_parse(const char *s, size_t len, cursor_t *out, const char **why)
{
	size_t tlen, i;
	const char *id = NULL;
	size_t idlen = 0;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (s == NULL || len == 0) {
		*why = "cursor is empty";
		return -1;
	}
	for (tlen = 0; tlen < len; tlen++)
		if (s[tlen] == '~' || s[tlen] == '|')
			break;
	if (tlen < len) {
		id = s + tlen + 1;
		idlen = len - tlen - 1;
		if (idlen == 0) {
			*why = "cursor id is empty";
			return -1;
		}
		if (idlen > CURSOR_ID_MAX) {
			*why = "cursor id is too long";
			return -1;
		}
		for (i = 0; i < idlen; i++) {
			char c = id[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-')) {
				*why = "cursor id has invalid characters";
				return -1;
			}
		}
	}
	if (tlen == 0) {
		*why = "cursor time is missing";
		return -1;
	}
	if (parse_time(s, tlen, &out->time_us, why) < 0)
		return -1;
	memcpy(out->id, id ? id : "", idlen);
	out->id[idlen] = '\0';
	*why = NULL;
	return 0;
}

int
cursor_format(const cursor_t *c, char *out, size_t outlen)
{
	int n = cursor_format_time(c->time_us, true, out, outlen);
	size_t idlen = strnlen(c->id, sizeof(c->id));

	if (n < 0)
		return -1;
	if (idlen == 0)
		return n;
	if ((size_t)n + 1 + idlen + 1 > outlen)
		return -1;
	out[n] = '~';
	memcpy(out + n + 1, c->id, idlen);
	out[n + 1 + idlen] = '\0';
	return n + 1 + (int)idlen;
}
