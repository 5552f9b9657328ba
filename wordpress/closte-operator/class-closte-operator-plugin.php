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
			return Closte_Operator_Result::unreachable( $e->getMessage() );
		}
		return new Closte_Operator_Result( (int) $response->status_code, (string) $response->body );
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

	const VERSION    = '0.1.0';
	const RETRY_HOOK = 'closte_operator_retry';
	const SYNC_HOOK  = 'closte_operator_sync';

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

	/**
	 * Builds the parts from the wp-config.php constants.
	 */
	private function __construct() {
		$store         = new Closte_Operator_Network_Store();
		$this->config  = Closte_Operator_Config::from_constants();
		$this->sidecar = new Closte_Operator_Sidecar( new Closte_Operator_WP_Transport(), $this->config );
		$this->queue   = new Closte_Operator_Queue( $this->sidecar, $store, new Closte_Operator_Table_Store(), null, array( $this, 'schedule_retry' ) );
		$this->router  = new Closte_Operator_Router( $this->sidecar, $this->queue );
		$this->sync    = new Closte_Operator_Sync( $this->sidecar, $this->queue, $store );
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
		add_action( self::RETRY_HOOK, array( $this, 'retry' ) );
		add_action( self::SYNC_HOOK, array( $this, 'sync' ) );
		if ( ! is_multisite() ) {
			return;
		}
		// After core's own wp_initialize_site (10), which switches to the new site and back.
		add_action( 'wp_initialize_site', array( $this, 'site_created' ), 100, 1 );
		add_action( 'wp_update_site', array( $this, 'site_updated' ), 10, 2 );
		add_action( 'wp_delete_site', array( $this, 'site_deleted' ), 10, 1 );
		add_action( 'init', array( $this, 'schedule_sync' ) );
		Closte_Operator_Admin::register( $this );
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
	 * A site whose domain changed: the old one goes (unless another site
	 * still uses it), the new one comes.
	 *
	 * @param WP_Site $new_site The site now.
	 * @param WP_Site $old_site The site before.
	 * @return void
	 */
	public function site_updated( $new_site, $old_site ): void {
		if ( ! $new_site instanceof WP_Site || ! $old_site instanceof WP_Site ) {
			return;
		}
		$new = Closte_Operator_Domains::normalize( $new_site->domain );
		$old = Closte_Operator_Domains::normalize( $old_site->domain );
		if ( $new === $old ) {
			return;
		}
		if ( $this->is_custom( $old ) && ! $this->domain_in_use( $old ) ) {
			$this->queue->attempt( Closte_Operator_Queue::delete( $old ) );
		}
		if ( $this->is_custom( $new ) ) {
			$this->queue->attempt( Closte_Operator_Queue::put( $new, (int) $new_site->blog_id ) );
		}
	}

	/**
	 * A deleted site: its domain goes (unless another site still uses it),
	 * and so does every other domain the sidecar has for its id.
	 *
	 * @param WP_Site $old_site The deleted site.
	 * @return void
	 */
	public function site_deleted( $old_site ): void {
		if ( ! $old_site instanceof WP_Site ) {
			return;
		}
		if ( $this->is_custom( $old_site->domain ) && ! $this->domain_in_use( $old_site->domain ) ) {
			$this->queue->attempt( Closte_Operator_Queue::delete( $old_site->domain ) );
		}
		$this->queue->attempt( Closte_Operator_Queue::site( (int) $old_site->blog_id, array() ) );
	}

	/**
	 * The retry event: what is due in the queue.
	 *
	 * @return void
	 */
	public function retry(): void {
		$this->queue->drain( false );
		$next = $this->queue->next_due();
		if ( null !== $next ) {
			$this->schedule_retry( $next );
		}
	}

	/**
	 * The sync event and the "Sync now" button.
	 *
	 * @return array The summary.
	 */
	public function sync(): array {
		$summary = $this->sync->run( $this->desired() );
		$next    = $this->queue->next_due();
		if ( null !== $next ) {
			$this->schedule_retry( $next );
		}
		return $summary;
	}

	/**
	 * Every site's domains according to WordPress: the site's own domain when
	 * outside the network's, plus Ultimate Multisite's mapped domains when its
	 * table exists. A domain claimed by several sites goes to the lowest id.
	 *
	 * @return array<int, array<int, string>>
	 */
	public function desired(): array {
		global $wpdb;
		$desired = array();
		$owner   = array();
		$claim   = function ( int $site_id, string $domain ) use ( &$desired, &$owner ): void {
			$domain = Closte_Operator_Domains::normalize( $domain );
			if ( isset( $desired[ $site_id ] ) && ! isset( $owner[ $domain ] ) && $this->is_custom( $domain ) ) {
				$owner[ $domain ]       = $site_id;
				$desired[ $site_id ][] = $domain;
			}
		};
		$sites = $wpdb->get_results( "SELECT blog_id, domain FROM {$wpdb->blogs} ORDER BY blog_id", ARRAY_A ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery -- one read of the whole table.
		foreach ( (array) $sites as $row ) {
			$desired[ (int) $row['blog_id'] ] = array();
		}
		foreach ( (array) $sites as $row ) {
			$claim( (int) $row['blog_id'], (string) $row['domain'] );
		}
		$table = $wpdb->base_prefix . 'wu_domain_mappings';
		if ( $wpdb->get_var( $wpdb->prepare( 'SHOW TABLES LIKE %s', $wpdb->esc_like( $table ) ) ) === $table ) { // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$mapped = $wpdb->get_results( "SELECT blog_id, domain FROM `{$table}` ORDER BY id", ARRAY_A ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
			foreach ( (array) $mapped as $row ) {
				$claim( (int) $row['blog_id'], (string) $row['domain'] );
			}
		}
		return $desired;
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
	 * Keeps the periodic sync scheduled, on the main site.
	 *
	 * @return void
	 */
	public function schedule_sync(): void {
		if ( wp_installing() || get_current_blog_id() !== $this->main_site_id() ) {
			return;
		}
		if ( false === wp_next_scheduled( self::SYNC_HOOK ) ) {
			/**
			 * How often the whole-set sync runs: a WP-Cron recurrence name.
			 *
			 * @param string $recurrence Default 'hourly'.
			 */
			$recurrence = (string) apply_filters( 'closte_operator_sync_recurrence', 'hourly' );
			wp_schedule_event( time() + MINUTE_IN_SECONDS, $recurrence, self::SYNC_HOOK );
		}
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
	 * Whether some site still has this domain.
	 *
	 * @param string $domain A domain.
	 * @return bool
	 */
	private function domain_in_use( string $domain ): bool {
		return get_sites(
			array(
				'domain' => Closte_Operator_Domains::normalize( $domain ),
				'count'  => true,
			)
		) > 0;
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
