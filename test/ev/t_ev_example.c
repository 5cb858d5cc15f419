// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The README's embedding example, as written there (between the markers),
 * with `serve` and the spawn options filled in: attach a stubwatch loop to
 * libev's default loop and drive a stub from its report callback.
 */
#include <sys/wait.h>

#include "t_ev.h"

static unsigned served;
static struct sw_event last;

/* Serve the stub's request: here, tell it to exit after ten round trips. */
static void serve(void *payload)
{
	struct t_msg *m = payload;

	m->cmd = ++served < 10 ? T_CMD_ECHO : T_CMD_EXIT;
	m->arg = 0;
	m->seq++;
}

/* ---- README example ---- */
static int on_event(struct sw_stub *stub, const struct sw_event *ev, void *ud)
{
	if (ev->type == SW_EV_REPORT) {
		serve(sw_page_payload(sw_stub_page(stub)));
		return sw_stub_resume(stub);         /* the next round trip */
	}
	last = *ev; /* (test only) */
	/* SW_EV_EXIT (ev->status) or SW_EV_KILL (ev->kill says why): reaped */
	sw_stub_free(stub);
	ev_break(EV_DEFAULT, EVBREAK_ALL);
	return 0;
}
/* ---- end ---- */

static int case_example(void *arg)
{
	struct sw_spawn_opts so = { .size = sizeof(so), .fn = t_stub_main,
				    .flags = SW_SPAWN_PDEATHSIG };
	struct sw_loop *loop = NULL;
	struct sw_stub *stub = NULL;
	struct sw_ev *glue = NULL;
	int r;

	(void)arg;
	/* ---- README example ---- */
	sw_loop_new(NULL, &loop);
	r = sw_stub_spawn(loop, &so, &stub);      /* in flight: reports first */
	sw_stub_set_callback(stub, on_event, NULL);
	sw_ev_attach(loop, EV_DEFAULT, &glue);    /* one ev_io on the loop fd */
	ev_run(EV_DEFAULT, 0);                    /* the callbacks drive it */
	sw_ev_detach(glue);                       /* before sw_loop_free() */
	sw_loop_free(loop);
	/* ---- end ---- */
	if (r == -ENOSYS)
		return t_skip("clone3 or pidfds missing");
	T_EQ(r, 0);
	T_ASSERT(glue, "attach");
	T_EQ(served, 10);
	T_EQ(last.type, SW_EV_EXIT);
	T_EQ(last.status, 0);
	ev_loop_destroy(EV_DEFAULT);
	return T_PASS;
}

int main(void)
{
	static const struct t_case cases[] = {
		{ "the README's embedding example", case_example, NULL, 20000 },
	};

	return t_run("t_ev_example", cases, 1);
}
