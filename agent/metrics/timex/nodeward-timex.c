/*
 * nodeward-timex: the kernel's NTP state for the timex collector (agent/metrics/collectors/timex.ts).
 * For each line read on stdin it answers with `name value` lines: the fields of struct timex that
 * node_exporter reads and `state`, the call's return value (TIME_OK … TIME_ERROR), then `end`. A
 * refused call answers `error <errno> <message>` and `end`. It exits at the end of its input.
 *
 * Why a program of its own: these numbers exist only as the answer of the adjtimex(2) system call
 * (no procfs or sysfs file has them), Node cannot make that call without a native addon, and
 * nodeward builds none. It stays running between scrapes because a fork and exec per scrape cost
 * the agent ≈ 3–4 ms of CPU, a round trip over its pipes ≈ 0.1 ms. modes = 0 only reads: no
 * CAP_SYS_TIME is needed and the clock is untouched.
 * Built by agent/metrics/timex/build.ts (cc -O2 -static), installed as /opt/nodeward/bin/nodeward-timex.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

int main(void) {
  int c;
  while ((c = getchar()) != EOF) {
    if (c != '\n') continue;
    struct timex t;
    memset(&t, 0, sizeof t); /* modes = 0: read only */
    int state = adjtimex(&t);
    if (state == -1) {
      int err = errno;
      printf("error %d %s\nend\n", err, strerror(err));
    } else {
      /* Fields are long, or long long on x32: print them all as long long. */
      printf("state %d\noffset %lld\nfreq %lld\nmaxerror %lld\nesterror %lld\nstatus %d\nconstant %lld\n"
             "tick %lld\nppsfreq %lld\njitter %lld\nshift %d\nstabil %lld\njitcnt %lld\ncalcnt %lld\n"
             "errcnt %lld\nstbcnt %lld\ntai %d\nend\n",
             state, (long long)t.offset, (long long)t.freq, (long long)t.maxerror, (long long)t.esterror,
             t.status, (long long)t.constant, (long long)t.tick, (long long)t.ppsfreq, (long long)t.jitter,
             t.shift, (long long)t.stabil, (long long)t.jitcnt, (long long)t.calcnt, (long long)t.errcnt,
             (long long)t.stbcnt, t.tai);
    }
    if (fflush(stdout) != 0) return 1;
  }
  return 0;
}
