<?php
/**
 * A plugin stand-in for the screen's tests: the real sidecar client, queue
 * and sync over the fakes, plus the plugin methods the screen calls, with
 * what they were asked recorded.
 *
 * @package Closte_Operator
 */

/**
 * The queue plus retry_now(), discard() and clear_rejected() over the
 * in-memory rows.
 */
final class Fake_Admin_Queue {

	public function __construct( public Closte_Operator_Queue $queue, public Memory_Queue_Store $rows ) {}

	public function __call( string $name, array $args ) {
		return $this->queue->$name( ...$args );
	}

	public function retry_now( string $key ): ?Closte_Operator_Result {
		$entries = $this->queue->entries();
		if ( ! isset( $entries[ $key ] ) ) {
			return null;
		}
		return $this->queue->attempt( array_intersect_key( $entries[ $key ], array_flip( array( 'op', 'domain', 'site', 'domains' ) ) ) );
	}

	public function discard( string $key ): bool {
		return $this->rows->remove( $key );
	}

	public function clear_rejected(): int {
		$count                     = count( $this->rows->rejected_rows );
		$this->rows->rejected_rows = array();
		return $count;
	}
}

/**
 * Closte_Operator_Plugin's public face, as the screen uses it.
 */
final class Fake_Admin_Plugin {

	public Closte_Operator_Config $config;
	public Closte_Operator_Sidecar $sidecar;
	public Fake_Admin_Queue $queue;
	public Closte_Operator_Sync $sync;

	/** check_interval()'s answer. */
	public array $interval = array(
		'seconds' => null,
		'source'  => 'sidecar-default',
		'error'   => '',
	);

	/** queue_problem()'s answer. */
	public string $queue_problem = '';

	/** Every save_check_interval() argument, in order. */
	public array $saved = array();

	/** What save_check_interval() answers. */
	public string $save_error = '';

	public ?int $next = null;
	public bool $overdue = false;
	public array $recurrence = array(
		'name'     => 'hourly',
		'interval' => 3600,
		'error'    => '',
	);

	/** What sync() returns (and stores as the last summary). */
	public array $summary = array();

	public function __construct( Closte_Operator_Sidecar $sidecar, Closte_Operator_Queue $queue, Memory_Queue_Store $rows, Memory_Store $store, Closure $clock ) {
		$this->config  = $sidecar->config;
		$this->sidecar = $sidecar;
		$this->queue   = new Fake_Admin_Queue( $queue, $rows );
		$this->sync    = new Closte_Operator_Sync( $sidecar, $queue, $store, $clock );
	}

	public function queue_problem(): string {
		return $this->queue_problem;
	}

	public function check_interval(): array {
		return $this->interval;
	}

	public function save_check_interval( ?int $seconds ): string {
		$this->saved[] = $seconds;
		return $this->save_error;
	}

	public function next_sync(): ?int {
		return $this->next;
	}

	public function sync_overdue(): bool {
		return $this->overdue;
	}

	public function recurrence(): array {
		return $this->recurrence;
	}

	public function sync(): array {
		return $this->summary;
	}
}

/**
 * The admin over a Fake_Admin_Plugin, and listings to answer with.
 */
abstract class Closte_Operator_Admin_Test_Case extends Closte_Operator_Test_Case {

	protected Fake_Admin_Plugin $plugin;
	protected Closte_Operator_Admin $admin;

	protected function setUp(): void {
		parent::setUp();
		Closte_WP::reset();
		$this->plugin = new Fake_Admin_Plugin( $this->sidecar, $this->queue, $this->rows, $this->store, fn() => $this->now );
		$this->admin  = new Closte_Operator_Admin( $this->plugin );
	}

	/**
	 * A listing entry.
	 *
	 * @param string $domain Domain.
	 * @param array  $fields Fields that differ from a ready, done domain with a certificate for 60 days.
	 */
	protected function entry( string $domain, array $fields = array() ): array {
		return $fields + array(
			'domain'      => $domain,
			'name'        => str_replace( '.', '-', $domain ),
			'siteId'      => null,
			'stage'       => 'done',
			'ready'       => true,
			'reason'      => 'Ready',
			'message'     => 'registered, DNS and certificate verified',
			'conditions'  => array(),
			'certificate' => array(
				'issuer'   => 'CN=Simulated CA',
				'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', time() + 60 * 86400 ),
			),
		);
	}

	/**
	 * The sidecar answers GET /v1/domains with these entries, /healthz with 200.
	 */
	protected function listing( array $entries ): void {
		$body                    = json_encode( array( 'domains' => $entries ) );
		$this->transport->answer = fn( $r ) => str_ends_with( $r['url'], '/v1/domains' ) ? new Closte_Operator_Result( 200, $body ) : new Closte_Operator_Result( 200, '{"status":"ok"}' );
	}

	/**
	 * The screen's HTML.
	 */
	protected function screen( array $get = array() ): string {
		$_GET = $get;
		ob_start();
		try {
			$this->admin->render();
		} finally {
			$html = (string) ob_get_clean();
		}
		return $html;
	}

	/**
	 * The <tr> of the domain table for `$domain`, or ''.
	 */
	protected static function row( string $html, string $domain ): string {
		$start = strpos( $html, 'data-domain="' . $domain . '"' );
		if ( false === $start ) {
			return '';
		}
		return substr( $html, $start, strpos( $html, '</tr>', $start ) - $start );
	}
}
