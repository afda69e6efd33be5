/*
 * dopa_emu: run the dopa_rig firmware (ATmega328P, 16 MHz) inside simavr.
 *
 * Copyright (C) 2026 dopa_rl developers.  GPL-3.0-or-later (it links simavr); see ../LICENSE, ../NOTICE.
 *
 * - UART0 is bridged to a fresh pseudo-terminal (raw mode).  The first stdout line is
 *   "pty <path>"; open it at any baud rate (the pty ignores it; simavr times bytes from UBRR0).
 * - Pin changes are written to stdout as "E <pin> <level> <cycle>" with pin one of
 *   valve (PB0), cue (PB5), ttl (PD7), lick (PD2, the level we drive), tone (the tone generator
 *   state the firmware mirrors in GPIOR0 bit 0 at the instant it starts/stops Timer1).
 *   Device time in microseconds is cycle / 16.  "T0 <cycle>" tells when the firmware started Timer0:
 *   its micros() reads (cycle - that) / 16, rounded down to a multiple of 4.
 * - When a tone stops, "F <toggles> <first cycle> <last cycle>" gives the toggles of the OC1A pin (PB1)
 *   while it played (the final toggle, which may be the stop itself, left out): its frequency.
 * - On exit: "X <done|crashed|stopped> <cycle>".  DOPA_EMU_TRACE_UART=1 adds "U rx|tx <byte> <cycle>"
 *   and "W rx|tx <monotonic ns> <cycle>" lines (every UART byte; wall-clock time of each frame).
 * - Commands, one per line on stdin:
 *     lick <0|1>            drive the lick input now
 *     lick <0|1> <cycle>    drive it at that emulated cycle (or now if already past)
 *     train <cycle> <period> <count>   a bouncing contact: toggle the lick input count times, the first
 *                           at that cycle, then every period cycles (one train at a time; a new one
 *                           replaces the rest of the old)
 *     adc <millivolts>      set the voltage on A0 (ADC0; AVcc = 5000 mV; 2500 mV at start)
 *     now                   reply "N <cycle>"
 *     reset [ext|wdt|bod]   reset the MCU (external reset pin by default; MCUSR says which), as a real
 *                           board's reset: registers and RAM start over, EEPROM is kept, every output pin
 *                           drops; the firmware boots again and reports "T0 <cycle>" anew.  Cycles on
 *                           stdout keep counting across it (one timeline)
 *     quit                  stop
 *   End of stdin also stops the emulator (the parent went away), as do SIGTERM and SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_io.h>
#include <sim_irq.h>
#include <sim_cycle_timers.h>
#include <avr_ioport.h>
#include <avr_uart.h>
#include <avr_adc.h>

#define F_CPU_HZ 16000000u
#define POLL_CYCLES 800          /* pty/stdin poll period: 50 us of emulated time */
#define TXBUF_SIZE (1u << 16)
#define MAX_SCHEDULED 32
#define GPIOR0_DATA_ADDR 0x3E    /* GPIOR0: I/O 0x1E, data space 0x3E */
#define UCSR0B_DATA_ADDR 0xC1
#define TCCR0B_DATA_ADDR 0x45
#define RXEN0_BIT 4

static volatile sig_atomic_t g_stop;
static int g_reset_pending;           /* MCUSR bits of a reset asked for on stdin (done between avr_run calls) */
static avr_cycle_count_t g_cycle_base;   /* cycles before the last reset (simavr may restart its counter) */
#define NOW() (g_cycle_base + g_avr->cycle)
static avr_t *g_avr;
static int g_master = -1, g_slave = -1;
static int g_xon = 1;

/* device -> host bytes waiting for the pty (the host may not be reading) */
static uint8_t g_tx[TXBUF_SIZE];
static size_t g_tx_head, g_tx_len;

/* host -> device bytes read from the pty, not yet accepted by the UART fifo */
static uint8_t g_rx[4096];
static size_t g_rx_pos, g_rx_len;

static char g_cmd[512];
static size_t g_cmd_len;

static avr_irq_t *g_lick_irq;
static int g_adc_mv = 2500;      /* the voltage on A0 (kept across a reset) */
static int g_lick_level;
static int g_tone_level;

typedef struct { int used; int level; } sched_t;
static sched_t g_sched[MAX_SCHEDULED];

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static void emit_edge(const char *pin, int level, avr_cycle_count_t cycle)
{
	printf("E %s %d %llu\n", pin, level, (unsigned long long)cycle);
	fflush(stdout);
}

static void tx_flush(void)
{
	while (g_tx_len) {
		size_t chunk = g_tx_len;
		if (g_tx_head + chunk > TXBUF_SIZE) chunk = TXBUF_SIZE - g_tx_head;
		ssize_t n = write(g_master, g_tx + g_tx_head, chunk);
		if (n <= 0) return;     /* EAGAIN: host not reading; keep the bytes */
		g_tx_head = (g_tx_head + (size_t)n) % TXBUF_SIZE;
		g_tx_len -= (size_t)n;
	}
}

static int g_trace_uart;   /* DOPA_EMU_TRACE_UART=1: also print "U <dir> <byte> <cycle>" for every UART byte */

static void on_uart_out(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)param;
	if (g_trace_uart) printf("U tx %u %llu\n", value & 0xFF, (unsigned long long)NOW());
	if (g_tx_len == TXBUF_SIZE) {          /* host gone for > 64 KB: drop oldest */
		g_tx_head = (g_tx_head + 1) % TXBUF_SIZE;
		g_tx_len--;
	}
	g_tx[(g_tx_head + g_tx_len) % TXBUF_SIZE] = (uint8_t)value;
	g_tx_len++;
	if (value == 0) {                      /* frame delimiter: hand the frame over now */
		tx_flush();
		if (g_trace_uart) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			printf("W tx %lld %llu\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (unsigned long long)NOW());
		}
	}
}

static void on_xon(avr_irq_t *irq, uint32_t value, void *param) { (void)irq; (void)value; (void)param; g_xon = 1; }
static void on_xoff(avr_irq_t *irq, uint32_t value, void *param) { (void)irq; (void)value; (void)param; g_xon = 0; }

static void on_pin(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq;
	emit_edge((const char *)param, value ? 1 : 0, NOW());
}

/* the square wave itself on OC1A/PB1: counted, not traced edge by edge */
static unsigned long g_tone_toggles;
static avr_cycle_count_t g_tone_first, g_tone_last, g_tone_before_last;
static int g_tone_pin = -1;

static void on_tone_pin(avr_irq_t *irq, uint32_t value, void *param)
{
	(void)irq; (void)param;
	int level = value ? 1 : 0;
	if (level == g_tone_pin) return;        /* simavr may report the same level again */
	g_tone_pin = level;
	if (!g_tone_level) return;
	if (g_tone_toggles++ == 0) g_tone_first = NOW();
	g_tone_before_last = g_tone_last;
	g_tone_last = NOW();
}

static void on_gpior0_write(avr_t *avr, avr_io_addr_t addr, uint8_t v, void *param)
{
	(void)param;
	avr->data[addr] = v;
	int level = v & 1;
	if (level != g_tone_level) {
		/* "F <toggles> <first> <before last>": the last toggle may be the stop itself, so the
		 * frequency is measured up to the one before */
		if (!level && g_tone_toggles > 2) {
			printf("F %lu %llu %llu\n", g_tone_toggles - 1, (unsigned long long)g_tone_first,
			       (unsigned long long)g_tone_before_last);
		}
		g_tone_toggles = 0;
		g_tone_level = level;
		emit_edge("tone", level, NOW());
	}
}

/* The firmware's micros() counts Timer0 overflows from the moment Arduino's init() starts Timer0
 * (first TCCR0B write with a clock); report that cycle so the host can map cycles to micros(). */
static int g_t0_seen;   /* Timer0 started since the last boot */

static void on_tccr0b_write(avr_t *avr, avr_io_addr_t addr, uint8_t v, void *param)
{
	(void)addr; (void)param; (void)avr;
	if (!g_t0_seen && (v & 7)) {
		g_t0_seen = 1;
		printf("T0 %llu\n", (unsigned long long)NOW());
		fflush(stdout);
	}
}

static void drive_lick(int level)
{
	level = level ? 1 : 0;
	avr_raise_irq(g_lick_irq, (uint32_t)level);
	if (level != g_lick_level) {
		g_lick_level = level;
		emit_edge("lick", level, NOW());
	}
}

/* a lick train: edges at a fixed period, driven from one self-rearming cycle timer */
static unsigned long long g_train_period, g_train_left;

static avr_cycle_count_t on_train(avr_t *avr, avr_cycle_count_t when, void *param)
{
	(void)avr; (void)param;
	if (!g_train_left) return 0;
	drive_lick(!g_lick_level);
	return --g_train_left ? when + g_train_period : 0;
}

static avr_cycle_count_t on_scheduled(avr_t *avr, avr_cycle_count_t when, void *param)
{
	(void)avr; (void)when;
	sched_t *s = (sched_t *)param;
	drive_lick(s->level);
	s->used = 0;
	return 0;
}

static void handle_command(char *line)
{
	char word[16];
	int level = 0;
	unsigned long long at = 0;
	int n = sscanf(line, "%15s %d %llu", word, &level, &at);
	if (n < 1) return;
	if (strcmp(word, "now") == 0) {
		printf("N %llu\n", (unsigned long long)NOW());
		fflush(stdout);
	} else if (strcmp(word, "adc") == 0 && n >= 2 && level >= 0 && level <= 5000) {
		g_adc_mv = level;
		avr_raise_irq(avr_io_getirq(g_avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), (uint32_t)level);
	} else if (strcmp(word, "reset") == 0) {
		char cause[8] = "ext";
		sscanf(line, "%*s %7s", cause);
		g_reset_pending = strcmp(cause, "wdt") == 0 ? 0x08 : strcmp(cause, "bod") == 0 ? 0x04 : 0x02;  /* WDRF, BORF, EXTRF */
	} else if (strcmp(word, "quit") == 0) {
		g_stop = 1;
	} else if (strcmp(word, "train") == 0) {
		unsigned long long first = 0, period = 0, count = 0;
		if (sscanf(line, "%15s %llu %llu %llu", word, &first, &period, &count) != 4 || period == 0) {
			fprintf(stderr, "dopa_emu: usage: train <cycle> <period> <count>\n");
			return;
		}
		avr_cycle_timer_cancel(g_avr, on_train, NULL);
		g_train_period = period;
		g_train_left = count;
		if (count)
			avr_cycle_timer_register(g_avr, first > NOW() ? first - NOW() : 1, on_train, NULL);
	} else if (strcmp(word, "lick") == 0 && n >= 2) {
		if (n < 3 || at <= NOW()) {
			drive_lick(level);
			return;
		}
		for (int i = 0; i < MAX_SCHEDULED; i++) {
			if (!g_sched[i].used) {
				g_sched[i].used = 1;
				g_sched[i].level = level;
				avr_cycle_timer_register(g_avr, at - NOW(), on_scheduled, &g_sched[i]);
				return;
			}
		}
		fprintf(stderr, "dopa_emu: too many scheduled lick changes\n");
	} else {
		fprintf(stderr, "dopa_emu: unknown command: %s\n", line);
	}
}

static void poll_stdin(void)
{
	char buf[256];
	ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
	if (n == 0) { g_stop = 1; return; }     /* parent closed our stdin */
	if (n < 0) return;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			g_cmd[g_cmd_len] = 0;
			handle_command(g_cmd);
			g_cmd_len = 0;
		} else if (g_cmd_len + 1 < sizeof g_cmd) {
			g_cmd[g_cmd_len++] = buf[i];
		}
	}
}

static avr_cycle_count_t on_poll(avr_t *avr, avr_cycle_count_t when, void *param)
{
	(void)param;
	tx_flush();
	if (g_rx_pos == g_rx_len) {
		ssize_t n = read(g_master, g_rx, sizeof g_rx);
		g_rx_pos = 0;
		g_rx_len = n > 0 ? (size_t)n : 0;
	}
	avr_irq_t *in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
	/* hold host bytes until the firmware has enabled its receiver (a real UART would see them
	 * as soon as the board runs; simavr drops them before RXEN0) */
	int rx_enabled = (avr->data[UCSR0B_DATA_ADDR] >> RXEN0_BIT) & 1;
	if (g_trace_uart && g_rx_pos == 0 && g_rx_len) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("W rx %lld %llu\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (unsigned long long)NOW());
	}
	while (rx_enabled && g_xon && g_rx_pos < g_rx_len) {
		if (g_trace_uart) printf("U rx %u %llu\n", g_rx[g_rx_pos], (unsigned long long)NOW());
		avr_raise_irq(in, g_rx[g_rx_pos++]);
	}
	poll_stdin();
	return when + POLL_CYCLES;
}

#define MCUSR_DATA_ADDR 0x54

/* A reset of the MCU between avr_run calls: simavr clears the registers and the cycle timers (the poll
 * timer is registered again); every output pin is low from then on (reported at once) */
static void do_reset(int mcusr)
{
	avr_cycle_count_t before = NOW();
	static const char *const pins[] = {"valve", "cue", "ttl"};
	avr_reset(g_avr);
	g_cycle_base = before - g_avr->cycle;
	g_avr->data[MCUSR_DATA_ADDR] = (uint8_t)mcusr;
	g_t0_seen = 0;
	g_xon = 1;
	for (int i = 0; i < 3; i++) emit_edge(pins[i], 0, NOW());
	if (g_tone_level) { g_tone_level = 0; g_tone_toggles = 0; emit_edge("tone", 0, NOW()); }
	avr_raise_irq(g_lick_irq, (uint32_t)g_lick_level);
	avr_raise_irq(avr_io_getirq(g_avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), (uint32_t)g_adc_mv);
	for (int i = 0; i < MAX_SCHEDULED; i++) g_sched[i].used = 0;   /* their timers went with the reset */
	g_train_left = 0;
	avr_cycle_timer_register(g_avr, POLL_CYCLES, on_poll, NULL);
	printf("R %d %llu\n", mcusr, (unsigned long long)NOW());
	fflush(stdout);
}

/* simavr's messages go to stderr: stdout carries only our protocol lines */
static void log_to_stderr(avr_t *avr, const int level, const char *format, va_list ap)
{
	(void)avr;
	if (level <= LOG_WARNING) vfprintf(stderr, format, ap);
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s firmware.elf\n", argv[0]);
		return 2;
	}
	avr_global_logger_set(log_to_stderr);
	g_trace_uart = getenv("DOPA_EMU_TRACE_UART") && strcmp(getenv("DOPA_EMU_TRACE_UART"), "1") == 0;
	elf_firmware_t fw;
	memset(&fw, 0, sizeof fw);
	if (elf_read_firmware(argv[1], &fw) != 0) {
		fprintf(stderr, "dopa_emu: cannot read %s\n", argv[1]);
		return 1;
	}
	strcpy(fw.mmcu, "atmega328p");
	fw.frequency = F_CPU_HZ;
	g_avr = avr_make_mcu_by_name(fw.mmcu);
	if (!g_avr) { fprintf(stderr, "dopa_emu: no atmega328p core\n"); return 1; }
	avr_init(g_avr);
	avr_load_firmware(g_avr, &fw);
	g_avr->frequency = F_CPU_HZ;
	g_avr->log = 1;
	g_avr->vcc = g_avr->avcc = g_avr->aref = 5000;

	struct termios tio;
	if (openpty(&g_master, &g_slave, NULL, NULL, NULL) != 0) { perror("openpty"); return 1; }
	tcgetattr(g_slave, &tio);
	cfmakeraw(&tio);
	tcsetattr(g_slave, TCSANOW, &tio);
	set_nonblock(g_master);
	set_nonblock(STDIN_FILENO);

	uint32_t flags = 0;
	avr_ioctl(g_avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
	flags &= ~(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
	avr_ioctl(g_avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_uart_out, NULL);
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);

	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 0), on_pin, "valve");
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 5), on_pin, "cue");
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 7), on_pin, "ttl");
	avr_register_io_write(g_avr, GPIOR0_DATA_ADDR, on_gpior0_write, NULL);
	avr_irq_register_notify(avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ('B'), 1), on_tone_pin, NULL);
	avr_register_io_write(g_avr, TCCR0B_DATA_ADDR, on_tccr0b_write, NULL);   /* simavr muxes it with the timer's own */
	g_lick_irq = avr_io_getirq(g_avr, AVR_IOCTL_IOPORT_GETIRQ('D'), 2);
	avr_raise_irq(g_lick_irq, 0);
	avr_raise_irq(avr_io_getirq(g_avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), 2500);

	avr_cycle_timer_register(g_avr, POLL_CYCLES, on_poll, NULL);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	printf("pty %s\n", ptsname(g_master));
	fflush(stdout);

	int state = cpu_Running;
	while (!g_stop) {
		state = avr_run(g_avr);
		if (state == cpu_Done || state == cpu_Crashed) break;
		if (g_reset_pending) {
			do_reset(g_reset_pending);
			g_reset_pending = 0;
		}
	}
	tx_flush();
	printf("X %s %llu\n", state == cpu_Crashed ? "crashed" : (state == cpu_Done ? "done" : "stopped"),
	       (unsigned long long)NOW());
	fflush(stdout);
	avr_terminate(g_avr);
	close(g_slave);
	close(g_master);
	return state == cpu_Crashed ? 3 : 0;
}
