<?php
/**
 * Writes to the sidecar that must not be lost: tried at once, else kept and
 * retried with backoff.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Where the queue keeps its state; network options in WordPress, an array in
 * the unit tests.
 */
interface Closte_Operator_Store {

	/**
	 * Reads a value.
	 *
	 * @param string $key     Name.
	 * @param mixed  $fallback Returned when nothing is stored.
	 * @return mixed
	 */
	public function get( string $key, mixed $fallback = null ): mixed;

	/**
	 * Writes a value.
	 *
	 * @param string $key   Name.
	 * @param mixed  $value Value (arrays and scalars).
	 * @return void
	 */
	public function set( string $key, mixed $value ): void;
}

/**
 * The write queue and the circuit breaker in front of the sidecar.
 *
 * An operation is an array: `put` (domain, site), `delete` (domain) or `site`
 * (site, domains: the whole set of one site). Operations on the same key (a
 * domain, or a site's set) replace each other: the newest wins, so a retry
 * never undoes a later change.
 *
 * A write that finds the sidecar unreachable opens the breaker for
 * BREAKER_SECONDS: writes submitted meanwhile go straight to the queue, so a
 * page never waits on a dead sidecar more than once. Retries ignore the
 * breaker; they are the probe that closes it.
 *
 * The queue is one network option, read and written without a lock: two
 * requests failing at the same moment may lose one entry. The periodic
 * whole-set sync repairs whatever a lost entry would have done.
 */
final class Closte_Operator_Queue {

	const QUEUE           = 'queue';
	const FAILURES        = 'failures';
	const DOWN            = 'down';
	const BREAKER_SECONDS = 30;
	const FIRST_DELAY     = 30;
	const MAX_DELAY       = 3600;
	const FAILURES_KEPT   = 20;

	/**
	 * Returns the current Unix time.
	 *
	 * @var Closure
	 */
	private Closure $clock;

	/**
	 * Called with the time the queue is next due, whenever entries remain.
	 *
	 * @var Closure|null
	 */
	private ?Closure $on_change;

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Sidecar $sidecar   The sidecar client.
	 * @param Closte_Operator_Store   $store     Where entries live.
	 * @param callable|null           $clock     Returns the Unix time; time() when null.
	 * @param callable|null           $on_change Receives the next due time when entries remain.
	 */
	public function __construct(
		private Closte_Operator_Sidecar $sidecar,
		private Closte_Operator_Store $store,
		?callable $clock = null,
		?callable $on_change = null
	) {
		$this->clock     = Closure::fromCallable( $clock ?? 'time' );
		$this->on_change = null === $on_change ? null : Closure::fromCallable( $on_change );
	}

	/**
	 * Operation: the domain exists, for this site when known.
	 *
	 * @param string   $domain  Domain.
	 * @param int|null $site_id Blog id.
	 * @return array
	 */
	public static function put( string $domain, ?int $site_id ): array {
		return array(
			'op'     => 'put',
			'domain' => Closte_Operator_Domains::normalize( $domain ),
			'site'   => $site_id,
		);
	}

	/**
	 * Operation: the domain no longer exists.
	 *
	 * @param string $domain Domain.
	 * @return array
	 */
	public static function delete( string $domain ): array {
		return array(
			'op'     => 'delete',
			'domain' => Closte_Operator_Domains::normalize( $domain ),
		);
	}

	/**
	 * Operation: these are all the domains of the site.
	 *
	 * @param int                $site_id Blog id.
	 * @param array<int, string> $domains Domains.
	 * @return array
	 */
	public static function site( int $site_id, array $domains ): array {
		return array(
			'op'      => 'site',
			'site'    => $site_id,
			'domains' => Closte_Operator_Domains::set( $domains ),
		);
	}

	/**
	 * What an operation replaces: its domain, or its site's set.
	 *
	 * @param array $op Operation.
	 * @return string
	 */
	public static function key( array $op ): string {
		return 'site' === $op['op'] ? 'site:' . (int) $op['site'] : 'domain:' . $op['domain'];
	}

	/**
	 * Tries an operation now (unless the breaker is open) and queues it if
	 * that fails in a way a retry can fix. `$perform` sends it some other way
	 * (the router's Closte-door request); by default it goes to the native door.
	 *
	 * @param array         $op      Operation.
	 * @param callable|null $perform Returns a Closte_Operator_Result.
	 * @return Closte_Operator_Result|null The answer, or null when not tried.
	 */
	public function attempt( array $op, ?callable $perform = null ): ?Closte_Operator_Result {
		$this->forget( self::key( $op ) );
		if ( $this->is_down() ) {
			$this->keep( $op, 1, 'not tried: the sidecar was unreachable moments ago', null );
			return null;
		}
		$result = null === $perform ? $this->perform( $op ) : $perform();
		$this->settle( $op, $result, 0, null );
		return $result;
	}

	/**
	 * Retries what is due (everything when `$force`). Once the sidecar proves
	 * unreachable the rest waits for the next round instead of each paying
	 * the timeout.
	 *
	 * @param bool $force Ignore the backoff.
	 * @return array{done: int, queued: int, dropped: int}
	 */
	public function drain( bool $force = false ): array {
		$summary     = array(
			'done'    => 0,
			'queued'  => 0,
			'dropped' => 0,
		);
		$now         = $this->now();
		$unreachable = null;
		foreach ( $this->entries() as $key => $entry ) {
			if ( ! $force && (int) $entry['next'] > $now ) {
				continue;
			}
			$op       = self::operation( $entry );
			$attempts = (int) $entry['attempts'];
			$since    = (int) $entry['since'];
			if ( null !== $unreachable ) {
				$this->keep( $op, $attempts + 1, 'not tried: ' . $unreachable, $since );
				++$summary['queued'];
				continue;
			}
			$result = $this->perform( $op );
			if ( ! isset( $this->entries()[ $key ] ) ) {
				continue; // replaced or settled meanwhile by another request
			}
			$this->forget( $key );
			$outcome = $this->settle( $op, $result, $attempts, $since );
			++$summary[ $outcome ];
			if ( ! $result->reached() ) {
				$unreachable = $result->message();
			}
		}
		return $summary;
	}

	/**
	 * Sends an operation to the native door.
	 *
	 * @param array $op Operation.
	 * @return Closte_Operator_Result
	 */
	public function perform( array $op ): Closte_Operator_Result {
		switch ( $op['op'] ) {
			case 'put':
				return $this->sidecar->put_domain( $op['domain'], null === $op['site'] ? null : (int) $op['site'] );
			case 'delete':
				return $this->sidecar->delete_domain( $op['domain'] );
			case 'site':
				return $this->sidecar->put_site_domains( (int) $op['site'], $op['domains'] );
		}
		return new Closte_Operator_Result( 400, '{"error":"unknown queued operation"}' );
	}

	/**
	 * The queued entries by key, oldest first: the operation plus `attempts`,
	 * `next` (Unix time), `error` and `since`.
	 *
	 * @return array<string, array>
	 */
	public function entries(): array {
		$entries = $this->store->get( self::QUEUE, array() );
		return is_array( $entries ) ? $entries : array();
	}

	/**
	 * Operations dropped because a retry cannot help (newest first).
	 *
	 * @return array<int, array>
	 */
	public function failures(): array {
		$failures = $this->store->get( self::FAILURES, array() );
		return is_array( $failures ) ? $failures : array();
	}

	/**
	 * When the earliest entry is due, or null when the queue is empty.
	 *
	 * @return int|null
	 */
	public function next_due(): ?int {
		$next = null;
		foreach ( $this->entries() as $entry ) {
			$next = null === $next ? (int) $entry['next'] : min( $next, (int) $entry['next'] );
		}
		return $next;
	}

	/**
	 * Whether the breaker is open: the sidecar was unreachable moments ago.
	 *
	 * @return bool
	 */
	public function is_down(): bool {
		$down = $this->store->get( self::DOWN, null );
		return is_array( $down ) && (int) $down['until'] > $this->now();
	}

	/**
	 * The last transport failure, while it is the latest news:
	 * `{time, until, error}`, or null once the sidecar answered again.
	 *
	 * @return array|null
	 */
	public function last_unreachable(): ?array {
		$down = $this->store->get( self::DOWN, null );
		return is_array( $down ) ? $down : null;
	}

	/**
	 * Records whether the sidecar answered; opens or closes the breaker.
	 *
	 * @param Closte_Operator_Result $result Any answer from the sidecar.
	 * @return void
	 */
	public function observe( Closte_Operator_Result $result ): void {
		if ( $result->reached() ) {
			if ( null !== $this->store->get( self::DOWN, null ) ) {
				$this->store->set( self::DOWN, null );
			}
			return;
		}
		$now = $this->now();
		$this->store->set(
			self::DOWN,
			array(
				'time'  => $now,
				'until' => $now + self::BREAKER_SECONDS,
				'error' => $result->message(),
			)
		);
	}

	/**
	 * Seconds to wait after the n-th failed attempt: the first failure (in a
	 * page request) is retried at the next cron run, then 30 s doubling to
	 * an hour.
	 *
	 * @param int $attempts Failed attempts so far.
	 * @return int
	 */
	public static function delay( int $attempts ): int {
		if ( $attempts <= 1 ) {
			return 0;
		}
		return (int) min( self::MAX_DELAY, self::FIRST_DELAY * ( 2 ** min( 20, $attempts - 2 ) ) );
	}

	/**
	 * Concludes one attempt: done, kept for a retry, or dropped.
	 *
	 * @param array                  $op       Operation.
	 * @param Closte_Operator_Result $result   Its answer.
	 * @param int                    $attempts Failed attempts before this one.
	 * @param int|null               $since    When it was first queued.
	 * @return string 'done', 'queued' or 'dropped'.
	 */
	private function settle( array $op, Closte_Operator_Result $result, int $attempts, ?int $since ): string {
		$this->observe( $result );
		if ( $result->ok() ) {
			return 'done';
		}
		if ( $result->retryable() ) {
			$this->keep( $op, $attempts + 1, $result->message(), $since );
			return 'queued';
		}
		$failures = $this->failures();
		array_unshift( $failures, $op + array( 'time' => $this->now(), 'error' => $result->message() ) );
		$this->store->set( self::FAILURES, array_slice( $failures, 0, self::FAILURES_KEPT ) );
		return 'dropped';
	}

	/**
	 * Queues an operation (replacing any for the same key).
	 *
	 * @param array    $op       Operation.
	 * @param int      $attempts Failed attempts, this one included.
	 * @param string   $error    Why it is queued.
	 * @param int|null $since    When it was first queued; now when null.
	 * @return void
	 */
	private function keep( array $op, int $attempts, string $error, ?int $since ): void {
		$now                             = $this->now();
		$entries                         = $this->entries();
		$entries[ self::key( $op ) ]     = self::operation( $op ) + array(
			'attempts' => $attempts,
			'next'     => $now + self::delay( $attempts ),
			'error'    => $error,
			'since'    => $since ?? $now,
		);
		$this->store->set( self::QUEUE, $entries );
		if ( null !== $this->on_change ) {
			( $this->on_change )( (int) $this->next_due() );
		}
	}

	/**
	 * Removes the entry for a key, if any.
	 *
	 * @param string $key Key.
	 * @return void
	 */
	private function forget( string $key ): void {
		$entries = $this->entries();
		if ( isset( $entries[ $key ] ) ) {
			unset( $entries[ $key ] );
			$this->store->set( self::QUEUE, $entries );
		}
	}

	/**
	 * The operation part of an entry.
	 *
	 * @param array $entry Entry or operation.
	 * @return array
	 */
	private static function operation( array $entry ): array {
		return array_intersect_key( $entry, array_flip( array( 'op', 'domain', 'site', 'domains' ) ) );
	}

	/**
	 * Now, from the clock.
	 *
	 * @return int
	 */
	private function now(): int {
		return (int) ( $this->clock )();
	}
}
