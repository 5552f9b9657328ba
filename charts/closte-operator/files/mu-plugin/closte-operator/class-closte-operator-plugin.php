<?php
/**
 * The WordPress side: HTTP transport, network-option store, and the hooks
 * that follow core multisite.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Requests to the sidecar through the HTTP library WordPress bundles
 * (Requests), not through wp_remote_request(): the sidecar is a loopback
 * companion, so WP_HTTP_BLOCK_EXTERNAL (which lets through only the current
 * site's own host, and during a site's deletion not even that), proxy
 * settings and other plugins' pre_http_request filters must not apply to it.
 */
final class Closte_Operator_WP_Transport implements Closte_Operator_Transport {

	/**
	 * Sends one request; any failure to get an answer becomes an unreachable
	 * result, never an exception or a PHP warning.
	 *
	 * @param string                $method  HTTP method.
	 * @param string                $url     Full URL.
	 * @param array<string, string> $headers Request headers.
	 * @param string|null           $body    Request body.
	 * @param float                 $timeout Seconds, connection included.
	 * @return Closte_Operator_Result
	 */
	public function request( string $method, string $url, array $headers, ?string $body, float $timeout ): Closte_Operator_Result {
		// WordPress 6.2+ autoloads the namespaced library; 6.1 loads Requests 1.x with WP_Http.
		if ( class_exists( '\WpOrg\Requests\Requests' ) ) {
			$requests = '\WpOrg\Requests\Requests';
		} elseif ( class_exists( 'Requests', false ) ) {
			$requests = 'Requests';
		} else {
			return Closte_Operator_Result::unreachable( 'WordPress\'s HTTP library (Requests) is not loaded' );
		}
		try {
			$response = $requests::request(
				$url,
				$headers,
				$body ?? array(),
				$method,
				array(
					'timeout'          => $timeout,
					'connect_timeout'  => $timeout,
					'follow_redirects' => false,
					'useragent'        => 'closte-operator-wordpress/' . Closte_Operator_Plugin::VERSION,
				)
			);
		} catch ( Throwable $e ) { // A transport or library failure must never take the page down.
			return self::failure( $e->getMessage() );
		}
		return new Closte_Operator_Result( (int) $response->status_code, (string) $response->body );
	}

	/**
	 * A failure to get an answer: a timeout once connected (cURL's "Operation
	 * timed out", fsockopen's "timed out" while reading) means a slow sidecar;
	 * anything else (refused, a connection timeout) means none is there.
	 *
	 * @param string $error The library's message.
	 * @return Closte_Operator_Result
	 */
	public static function failure( string $error ): Closte_Operator_Result {
		$slow = false !== stripos( $error, 'timed out' ) && false === stripos( $error, 'connection timed out' ) && false === stripos( $error, 'connect' );
		return $slow ? Closte_Operator_Result::timed_out( $error ) : Closte_Operator_Result::unreachable( $error );
	}
}

/**
 * The queue's state as options of the main network (`closte_operator_*`).
 */
final class Closte_Operator_Network_Store implements Closte_Operator_Store {

	const PREFIX = 'closte_operator_';

	/**
	 * Reads a value.
	 *
	 * @param string $key      Name.
	 * @param mixed  $fallback Returned when nothing is stored.
	 * @return mixed
	 */
	public function get( string $key, mixed $fallback = null ): mixed {
		$value = get_network_option( get_main_network_id(), self::PREFIX . $key, null );
		return null === $value ? $fallback : $value;
	}

	/**
	 * Writes a value; null deletes it.
	 *
	 * @param string $key   Name.
	 * @param mixed  $value Value.
	 * @return void
	 */
	public function set( string $key, mixed $value ): void {
		if ( null === $value ) {
			delete_network_option( get_main_network_id(), self::PREFIX . $key );
			return;
		}
		update_network_option( get_main_network_id(), self::PREFIX . $key, $value );
	}
}

/**
 * Wires everything to WordPress.
 */
final class Closte_Operator_Plugin {

	const VERSION       = '0.2.0';
	const TEXT_DOMAIN   = 'closte-operator';
	const RETRY_HOOK    = 'closte_operator_retry';
	const SYNC_HOOK     = 'closte_operator_sync';
	const CONTINUE_HOOK = 'closte_operator_sync_continue';
	const HOOKS         = array( self::RETRY_HOOK, self::SYNC_HOOK, self::CONTINUE_HOOK );

	/** The network option (without the store's prefix) of the interval set on the screen. */
	const INTERVAL_OPTION = 'check_interval';

	/** Ultimate Multisite's range and default for its "DNS Check Interval". */
	const MIN_INTERVAL = 10;
	const MAX_INTERVAL = 300;

	/** Seconds one sync batch may spend, at most. */
	const SYNC_BUDGET = 20;

	/**
	 * The one instance.
	 *
	 * @var Closte_Operator_Plugin|null
	 */
	private static ?Closte_Operator_Plugin $instance = null;

	public readonly Closte_Operator_Config $config;
	public readonly Closte_Operator_Sidecar $sidecar;
	public readonly Closte_Operator_Queue $queue;
	public readonly Closte_Operator_Router $router;
	public readonly Closte_Operator_Sync $sync;
	private Closte_Operator_Store $store;

	/**
	 * Builds the parts from the wp-config.php constants.
	 */
	private function __construct() {
		$this->store   = new Closte_Operator_Network_Store();
		$this->config  = Closte_Operator_Config::from_constants();
		$this->sidecar = new Closte_Operator_Sidecar( new Closte_Operator_WP_Transport(), $this->config, fn() => $this->check_interval()['seconds'] );
		$this->queue   = new Closte_Operator_Queue( $this->sidecar, $this->store, new Closte_Operator_Table_Store(), null, array( $this, 'schedule_retry' ) );
		$this->router  = new Closte_Operator_Router( $this->sidecar, $this->queue );
		$this->sync    = new Closte_Operator_Sync( $this->sidecar, $this->queue, $this->store );
	}

	/**
	 * The plugin.
	 *
	 * @return self
	 */
	public static function instance(): self {
		if ( null === self::$instance ) {
			self::$instance = new self();
		}
		return self::$instance;
	}

	/**
	 * Adds the hooks.
	 *
	 * @return void
	 */
	public function register(): void {
		add_filter( 'pre_http_request', array( $this->router, 'filter' ), 10, 3 );
		add_action( 'init', array( $this, 'load_textdomain' ), 1 );
		add_action( self::RETRY_HOOK, array( $this, 'retry' ) );
		add_action( self::SYNC_HOOK, array( $this, 'sync' ) );
		add_action( self::CONTINUE_HOOK, array( $this, 'sync' ) );
		if ( defined( 'WP_CLI' ) && WP_CLI && class_exists( 'WP_CLI' ) ) {
			WP_CLI::add_command( 'closte-operator', new Closte_Operator_CLI( $this ) );
		}
		if ( ! is_multisite() ) {
			return;
		}
		// Now, before plugins and the theme: a proof request ends here.
		Closte_Operator_Proof::serve( $this->config );
		// After core's own wp_initialize_site (10), which switches to the new site and back.
		add_action( 'wp_initialize_site', array( $this, 'site_created' ), 100, 1 );
		add_action( 'wp_update_site', array( $this, 'site_updated' ), 10, 2 );
		add_action( 'wp_delete_site', array( $this, 'site_deleted' ), 10, 1 );
		add_action( 'init', array( $this, 'schedule_sync' ) );
		Closte_Operator_Admin::register( $this );
	}

	/**
	 * Loads the translations: a language pack in wp-content/languages/plugins
	 * first, then the plugin's own languages/ folder.
	 *
	 * @return void
	 */
	public function load_textdomain(): void {
		$locale = determine_locale();
		$file   = self::TEXT_DOMAIN . '-' . $locale . '.mo';
		if ( ! load_textdomain( self::TEXT_DOMAIN, WP_LANG_DIR . '/plugins/' . $file ) ) {
			load_textdomain( self::TEXT_DOMAIN, __DIR__ . '/languages/' . $file );
		}
	}

	/**
	 * A new (or duplicated) site: its domain, when outside the network's.
	 *
	 * @param WP_Site $site The new site.
	 * @return void
	 */
	public function site_created( $site ): void {
		if ( $site instanceof WP_Site && $this->is_custom( $site->domain ) ) {
			$this->queue->attempt( Closte_Operator_Queue::put( $site->domain, (int) $site->blog_id ) );
		}
	}

	/**
	 * A site whose domain changed: its set is written again from desired()
	 * (so its Ultimate Multisite mappings stay), the site that now claims the
	 * old domain gets it, and an old domain no site claims goes.
	 *
	 * @param WP_Site $new_site The site now.
	 * @param WP_Site $old_site The site before.
	 * @return void
	 */
	public function site_updated( $new_site, $old_site ): void {
		if ( ! $new_site instanceof WP_Site || ! $old_site instanceof WP_Site ) {
			return;
		}
		$old = Closte_Operator_Domains::normalize( $old_site->domain );
		if ( Closte_Operator_Domains::normalize( $new_site->domain ) === $old ) {
			return;
		}
		$desired = $this->desired();
		$site_id = (int) $new_site->blog_id;
		$this->queue->attempt( Closte_Operator_Queue::site( $site_id, $desired[ $site_id ] ?? array() ) );
		$this->hand_over( array( $old ), $desired, $site_id );
	}

	/**
	 * A deleted site: every MappedDomain of its id goes; a domain of its that
	 * another site claims is written for that site; an unclaimed domain of
	 * its without a site id goes too.
	 *
	 * @param WP_Site $old_site The deleted site.
	 * @return void
	 */
	public function site_deleted( $old_site ): void {
		if ( ! $old_site instanceof WP_Site ) {
			return;
		}
		$site_id = (int) $old_site->blog_id;
		$this->queue->attempt( Closte_Operator_Queue::site( $site_id, array() ) );
		$this->hand_over( array( Closte_Operator_Domains::normalize( $old_site->domain ) ), $this->desired(), $site_id );
	}

	/**
	 * Domains a site let go: each claimed by another site (in desired()) is
	 * written with that site's set; each custom one nobody claims is deleted.
	 *
	 * @param array<int, string>             $domains Domains the site had.
	 * @param array<int, array<int, string>> $desired From desired().
	 * @param int                            $from    The site that let them go.
	 * @return void
	 */
	private function hand_over( array $domains, array $desired, int $from ): void {
		$claims = Closte_Operator_Domains::claims( $desired );
		foreach ( $domains as $domain ) {
			if ( ! $this->is_custom( $domain ) ) {
				continue;
			}
			$owner = $claims[ $domain ] ?? null;
			if ( null === $owner ) {
				$this->queue->attempt( Closte_Operator_Queue::delete( $domain ) );
			} elseif ( $owner !== $from ) {
				$this->queue->attempt( Closte_Operator_Queue::site( $owner, $desired[ $owner ] ) );
			}
		}
	}

	/**
	 * The retry event: what is due in the queue.
	 *
	 * @return void
	 */
	public function retry(): void {
		$this->queue->drain( false, time() + $this->sync_budget() );
		$next = $this->queue->next_due();
		if ( null !== $next ) {
			$this->schedule_retry( $next );
		}
	}

	/**
	 * One batch of the sync: the periodic event, its follow-ups, the "Sync
	 * now" button and `wp closte-operator sync`. When the batch runs out of
	 * time a follow-up event continues where it stopped.
	 *
	 * @param int|null $budget Seconds this batch may spend; sync_budget() when null.
	 * @return array The summary (see Closte_Operator_Sync::run()).
	 */
	public function sync( $budget = null ): array {
		$budget  = is_int( $budget ) && $budget > 0 ? $budget : $this->sync_budget();
		$summary = $this->sync->run( $this->desired(), $this->check_interval()['seconds'], $budget );
		if ( $summary['ok'] && ! $summary['complete'] ) {
			$this->schedule_batch();
		}
		$next = $this->queue->next_due();
		if ( null !== $next ) {
			$this->schedule_retry( $next );
		}
		return $summary;
	}

	/**
	 * Seconds one sync batch may spend: SYNC_BUDGET, at most a third of
	 * max_execution_time when PHP sets one (WP-Cron's lock lasts 60 s).
	 *
	 * @return int
	 */
	public function sync_budget(): int {
		$budget = self::SYNC_BUDGET;
		$limit  = (int) ini_get( 'max_execution_time' );
		if ( $limit > 0 ) {
			$budget = max( 1, min( $budget, intdiv( $limit, 3 ) ) );
		}
		/**
		 * Seconds one batch of the whole-set sync may spend.
		 *
		 * @param int $budget Default: 20, or a third of max_execution_time when less.
		 */
		return max( 1, (int) apply_filters( 'closte_operator_sync_budget', $budget ) );
	}

	/**
	 * Every site's domains according to WordPress: the site's own domain when
	 * outside the network's, plus Ultimate Multisite's mapped domains when its
	 * table exists, plus what the `closte_operator_desired_domains` filter
	 * adds. A domain claimed by several sites goes to the lowest id.
	 *
	 * @return array<int, array<int, string>>
	 */
	public function desired(): array {
		global $wpdb;
		$primary = array();
		$listed  = array();
		$sites   = $wpdb->get_results( "SELECT blog_id, domain FROM {$wpdb->blogs} ORDER BY blog_id", ARRAY_A ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery -- one read of the whole table.
		foreach ( (array) $sites as $row ) {
			$primary[ (int) $row['blog_id'] ] = (string) $row['domain'];
			$listed[ (int) $row['blog_id'] ]  = array();
		}
		$table = $wpdb->base_prefix . 'wu_domain_mappings';
		if ( $wpdb->get_var( $wpdb->prepare( 'SHOW TABLES LIKE %s', $wpdb->esc_like( $table ) ) ) === $table ) { // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$mapped = $wpdb->get_results( "SELECT blog_id, domain FROM `{$table}` ORDER BY id", ARRAY_A ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
			foreach ( (array) $mapped as $row ) {
				if ( isset( $listed[ (int) $row['blog_id'] ] ) ) {
					$listed[ (int) $row['blog_id'] ][] = (string) $row['domain'];
				}
			}
		}
		/**
		 * Every site's domains besides its own, for mapping plugins other
		 * than core and Ultimate Multisite: add to a site's list. Only sites
		 * that exist and domains outside the network's are kept; a domain
		 * already claimed (a site's own domain first) stays with its site.
		 *
		 * @param array<int, array<int, string>> $listed  Site id => mapped domains (Ultimate Multisite's, when active).
		 * @param array<int, string>             $primary Site id => its own domain.
		 */
		$filtered = apply_filters( 'closte_operator_desired_domains', $listed, $primary );
		$network  = get_network( get_main_network_id() );
		return Closte_Operator_Domains::desired( is_array( $filtered ) ? $filtered : $listed, $primary, $network instanceof WP_Network ? $network->domain : '' );
	}

	/**
	 * The DNS check interval every MappedDomain of the network gets, in
	 * seconds: Ultimate Multisite's "DNS Check Interval" when it is active,
	 * else the screen's field, else null (the sidecar's --check-interval).
	 *
	 * @return array{seconds: int|null, source: string, error: string}
	 */
	public function check_interval(): array {
		if ( function_exists( 'wu_get_setting' ) ) {
			return Closte_Operator_Domains::interval( wu_get_setting( 'dns_check_interval', self::MAX_INTERVAL ), 'ultimate-multisite' );
		}
		$saved = $this->store->get( self::INTERVAL_OPTION, null );
		return null === $saved
			? array(
				'seconds' => null,
				'source'  => 'sidecar-default',
				'error'   => '',
			)
			: Closte_Operator_Domains::interval( $saved, 'setting' );
	}

	/**
	 * Saves the screen's interval (null clears it) and starts a sync batch
	 * soon, which patches the existing MappedDomains.
	 *
	 * @param int|null $seconds 10 to 300, or null.
	 * @return string '' when saved, else why not (nothing saved).
	 */
	public function save_check_interval( ?int $seconds ): string {
		if ( null !== $seconds && ( $seconds < self::MIN_INTERVAL || $seconds > self::MAX_INTERVAL ) ) {
			/* translators: 1: minimum seconds, 2: maximum seconds */
			return sprintf( __( 'The DNS check interval must be between %1$d and %2$d seconds.', 'closte-operator' ), self::MIN_INTERVAL, self::MAX_INTERVAL );
		}
		if ( function_exists( 'wu_get_setting' ) ) {
			return __( 'Ultimate Multisite sets the DNS check interval (Ultimate Multisite > Settings > Domain Mapping).', 'closte-operator' );
		}
		$this->store->set( self::INTERVAL_OPTION, $seconds );
		$this->schedule_batch();
		return '';
	}

	/**
	 * Schedules a sync batch on the main site as soon as WP-Cron runs,
	 * unless one is waiting already.
	 *
	 * @return void
	 */
	private function schedule_batch(): void {
		$this->on_main_site(
			function () {
				if ( false === wp_next_scheduled( self::CONTINUE_HOOK ) ) {
					wp_schedule_single_event( time(), self::CONTINUE_HOOK );
				}
			}
		);
	}

	/**
	 * Schedules the retry event on the main site for `$when` (or now), unless
	 * one is due earlier.
	 *
	 * @param int $when Unix time.
	 * @return void
	 */
	public function schedule_retry( int $when ): void {
		$when = max( time(), $when );
		$this->on_main_site(
			function () use ( $when ) {
				$next = wp_next_scheduled( self::RETRY_HOOK );
				if ( false !== $next && $next <= $when ) {
					return;
				}
				if ( false !== $next ) {
					wp_unschedule_event( $next, self::RETRY_HOOK );
				}
				wp_schedule_single_event( $when, self::RETRY_HOOK );
			}
		);
	}

	/**
	 * The sync's WP-Cron recurrence: the filtered name when WordPress knows
	 * it, else 'hourly' with the reason.
	 *
	 * @return array{name: string, interval: int, error: string}
	 */
	public function recurrence(): array {
		/**
		 * How often the whole-set sync runs: a WP-Cron recurrence name
		 * ('hourly', 'twicedaily', 'daily' or one added with cron_schedules).
		 *
		 * @param string $recurrence Default 'hourly'.
		 */
		$wanted    = apply_filters( 'closte_operator_sync_recurrence', 'hourly' );
		$schedules = wp_get_schedules();
		if ( is_string( $wanted ) && isset( $schedules[ $wanted ]['interval'] ) ) {
			return array(
				'name'     => $wanted,
				'interval' => (int) $schedules[ $wanted ]['interval'],
				'error'    => '',
			);
		}
		return array(
			'name'     => 'hourly',
			'interval' => HOUR_IN_SECONDS,
			/* translators: %s: the recurrence asked for */
			'error'    => sprintf( __( 'the sync recurrence "%s" (filter closte_operator_sync_recurrence) is not a WP-Cron schedule WordPress knows; the sync runs hourly', 'closte-operator' ), is_scalar( $wanted ) ? (string) $wanted : gettype( $wanted ) ),
		);
	}

	/**
	 * Keeps the periodic sync scheduled on the main site, with the current
	 * recurrence (a changed one reschedules it). Reads only the cron option
	 * WordPress has loaded already: no query on a normal page load.
	 *
	 * @return void
	 */
	public function schedule_sync(): void {
		if ( wp_installing() || get_current_blog_id() !== $this->main_site_id() ) {
			return;
		}
		$recurrence = $this->recurrence();
		$event      = wp_get_scheduled_event( self::SYNC_HOOK );
		if ( false !== $event && $event->schedule === $recurrence['name'] ) {
			return;
		}
		if ( false !== $event ) {
			wp_clear_scheduled_hook( self::SYNC_HOOK );
		}
		wp_schedule_event( time() + MINUTE_IN_SECONDS, $recurrence['name'], self::SYNC_HOOK );
	}

	/**
	 * When the periodic sync runs next (Unix time), or null when it is not scheduled.
	 *
	 * @return int|null
	 */
	public function next_sync(): ?int {
		$next = null;
		$this->on_main_site(
			function () use ( &$next ) {
				$time = wp_next_scheduled( self::SYNC_HOOK );
				$next = false === $time ? null : (int) $time;
			}
		);
		return $next;
	}

	/**
	 * Whether the sync is overdue: WP-Cron has not run its event, or no sync
	 * has completed for two recurrences.
	 *
	 * @return bool
	 */
	public function sync_overdue(): bool {
		return Closte_Operator_Sync::overdue( $this->next_sync(), $this->sync->last_complete(), $this->recurrence()['interval'], time() );
	}

	/**
	 * Removes everything the plugin keeps in WordPress: its WP-Cron events,
	 * its network options and its queue table. MappedDomains stay (they are
	 * Kubernetes objects; delete them there). The mu-plugin files must be
	 * removed too, or the next request schedules the sync again.
	 *
	 * @return array{events: int, options: int} What was removed.
	 */
	public function uninstall(): array {
		global $wpdb;
		$events = 0;
		$this->on_main_site(
			function () use ( &$events ) {
				foreach ( self::HOOKS as $hook ) {
					$cleared = wp_clear_scheduled_hook( $hook );
					$events += is_int( $cleared ) ? $cleared : 0;
				}
			}
		);
		Closte_Operator_Table_Store::drop();
		$this->sync->forget();
		$like  = $wpdb->esc_like( Closte_Operator_Network_Store::PREFIX ) . '%';
		$names = is_multisite()
			? $wpdb->get_col( $wpdb->prepare( "SELECT meta_key FROM {$wpdb->sitemeta} WHERE site_id = %d AND meta_key LIKE %s", get_main_network_id(), $like ) ) // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.SlowDBQuery
			: $wpdb->get_col( $wpdb->prepare( "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s", $like ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
		foreach ( (array) $names as $name ) {
			delete_network_option( get_main_network_id(), (string) $name );
		}
		return array(
			'events'  => $events,
			'options' => count( (array) $names ),
		);
	}

	/**
	 * Why the queue's table cannot be used ('' when it can): Site Health
	 * says so, since a failed write then waits for the next sync.
	 *
	 * @return string
	 */
	public function queue_problem(): string {
		return Closte_Operator_Table_Store::problem();
	}

	/**
	 * Whether a domain lies outside the main network's domain.
	 *
	 * @param string $domain A domain.
	 * @return bool
	 */
	public function is_custom( string $domain ): bool {
		$network = get_network( get_main_network_id() );
		return Closte_Operator_Domains::is_custom( $domain, $network instanceof WP_Network ? $network->domain : '' );
	}

	/**
	 * The main network's main site.
	 *
	 * @return int
	 */
	private function main_site_id(): int {
		return (int) get_main_site_id( get_main_network_id() );
	}

	/**
	 * Runs `$callback` with the main site as the current one (WP-Cron events
	 * of this plugin live there).
	 *
	 * @param callable $callback What to run.
	 * @return void
	 */
	private function on_main_site( callable $callback ): void {
		$main   = $this->main_site_id();
		$switch = is_multisite() && $main > 0 && get_current_blog_id() !== $main;
		if ( $switch ) {
			switch_to_blog( $main );
		}
		try {
			$callback();
		} finally {
			if ( $switch ) {
				restore_current_blog();
			}
		}
	}
}
