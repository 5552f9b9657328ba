<?php
/**
 * The network-admin screen, its buttons and forms, the admin notice and the
 * Site Health test.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * What a network administrator sees. Only the screen and the Site Health test
 * talk to the sidecar; notices read stored state, so no page waits on it. The
 * texts, labels, paging and the verdict are pure (Closte_Operator_Screen,
 * Closte_Operator_Health); this class reads WordPress and prints.
 */
final class Closte_Operator_Admin {

	const PAGE            = 'closte-operator';
	const ACTION          = 'closte_operator_sync';
	const QUEUE_ACTION    = 'closte_operator_queue';
	const CLEAR_ACTION    = 'closte_operator_clear';
	const INTERVAL_ACTION = 'closte_operator_interval';
	const INTERVAL_FIELD  = 'closte_operator_check_interval';
	const REST_NAMESPACE  = 'closte-operator/v1';
	const REST_ROUTE      = '/site-health';
	const TEST            = 'closte_operator_sidecar';
	const FLASH           = 'closte_operator_flash_';

	/** Waiting changes listed on the screen, oldest first (the queue holds up to 1,000). */
	const QUEUE_SHOWN = 100;

	/** Domains listed in the Site Health description, per kind. */
	const HEALTH_SHOWN = 20;

	/**
	 * The sidecar's list, once load() asked for it.
	 *
	 * @var Closte_Operator_Result|null
	 */
	private ?Closte_Operator_Result $listing = null;

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Plugin $plugin The plugin (an object with its parts and methods in the unit tests).
	 */
	public function __construct( private object $plugin ) {}

	/**
	 * Adds the admin hooks.
	 *
	 * @param Closte_Operator_Plugin $plugin The plugin.
	 * @return void
	 */
	public static function register( object $plugin ): void {
		$admin = new self( $plugin );
		add_action( 'network_admin_menu', array( $admin, 'menu' ) );
		add_action( 'network_admin_edit_' . self::ACTION, array( $admin, 'sync_now' ) );
		add_action( 'network_admin_edit_' . self::QUEUE_ACTION, array( $admin, 'queue_submitted' ) );
		add_action( 'network_admin_edit_' . self::CLEAR_ACTION, array( $admin, 'clear_submitted' ) );
		add_action( 'network_admin_edit_' . self::INTERVAL_ACTION, array( $admin, 'interval_submitted' ) );
		add_action( 'network_admin_notices', array( $admin, 'notice' ) );
		add_filter( 'site_status_tests', array( $admin, 'site_status_tests' ) );
		add_action( 'rest_api_init', array( $admin, 'rest_routes' ) );
	}

	/**
	 * The screen's URL.
	 *
	 * @param array $args Extra query arguments.
	 * @return string
	 */
	public static function page_url( array $args = array() ): string {
		return add_query_arg( array( 'page' => self::PAGE ) + $args, network_admin_url( 'settings.php' ) );
	}

	/**
	 * Network Admin > Settings > Closte domains.
	 *
	 * @return void
	 */
	public function menu(): void {
		$hook = add_submenu_page(
			'settings.php',
			__( 'Closte domains', 'closte-operator' ),
			__( 'Closte domains', 'closte-operator' ),
			'manage_network',
			self::PAGE,
			array( $this, 'render' )
		);
		if ( is_string( $hook ) && '' !== $hook ) {
			add_action( 'load-' . $hook, array( $this, 'load' ) );
		}
	}

	/**
	 * Before the screen's header: asks the sidecar for its list, so that the
	 * notices above the screen tell whether it answers now, not whether it
	 * answered last time.
	 *
	 * @return void
	 */
	public function load(): void {
		if ( current_user_can( 'manage_network' ) ) {
			$this->listing = $this->plugin->sidecar->domains();
			$this->plugin->queue->observe( $this->listing );
		}
	}

	/**
	 * Dies unless the request is a POST from a network administrator with a
	 * valid nonce for `$action`.
	 *
	 * @param string $action The nonce action.
	 * @return void
	 */
	private function guard( string $action ): void {
		if ( ! current_user_can( 'manage_network' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to change the Closte domains.', 'closte-operator' ), '', array( 'response' => 403 ) );
		}
		if ( 'POST' !== ( isset( $_SERVER['REQUEST_METHOD'] ) ? sanitize_text_field( wp_unslash( $_SERVER['REQUEST_METHOD'] ) ) : '' ) ) {
			wp_die( esc_html__( 'This action needs a form submission.', 'closte-operator' ), '', array( 'response' => 405 ) );
		}
		check_admin_referer( $action );
	}

	/**
	 * Back to the screen, and the end of the request.
	 *
	 * @param array $args Query arguments for the screen.
	 * @return void
	 */
	private function back( array $args = array() ): void {
		wp_safe_redirect( self::page_url( $args ) );
		exit;
	}

	/**
	 * Keeps a notice for the current user's next view of the screen.
	 *
	 * @param array $notice type and text.
	 * @return void
	 */
	private function flash( array $notice ): void {
		set_site_transient( self::FLASH . get_current_user_id(), $notice, 5 * MINUTE_IN_SECONDS );
	}

	/**
	 * The "Sync now" button's target (network/edit.php?action=closte_operator_sync).
	 *
	 * @return void
	 */
	public function sync_now(): void {
		$this->guard( self::ACTION );
		$summary = $this->plugin->sync();
		$this->back( array( 'synced' => empty( $summary['ok'] ) ? 'failed' : 'ok' ) );
	}

	/**
	 * Retry or Discard on a waiting change (network/edit.php?action=closte_operator_queue).
	 *
	 * @return void
	 */
	public function queue_submitted(): void {
		$this->guard( self::QUEUE_ACTION );
		// phpcs:disable WordPress.Security.NonceVerification.Missing -- checked in guard().
		$key = isset( $_POST['key'] ) ? sanitize_text_field( wp_unslash( $_POST['key'] ) ) : '';
		$do  = isset( $_POST['do'] ) ? sanitize_key( wp_unslash( $_POST['do'] ) ) : '';
		// phpcs:enable
		$this->flash( $this->queue_action( $do, $key ) );
		$this->back();
	}

	/**
	 * Retries or discards one waiting change.
	 *
	 * @param string $action 'retry' or 'discard'.
	 * @param string $key    The entry's key.
	 * @return array{type: string, text: string} The notice.
	 */
	public function queue_action( string $action, string $key ): array {
		$entries = $this->plugin->queue->entries();
		$what    = isset( $entries[ $key ] ) ? Closte_Operator_Screen::describe( $entries[ $key ] ) : $key;
		if ( 'retry' === $action ) {
			return Closte_Operator_Screen::retry_notice( $what, isset( $entries[ $key ] ) ? $this->plugin->queue->retry_now( $key ) : null );
		}
		if ( 'discard' === $action ) {
			return $this->plugin->queue->discard( $key )
				? array(
					'type' => 'success',
					/* translators: %s: the change */
					'text' => sprintf( __( 'Discarded: %s. The next sync writes every site\'s domains from WordPress again.', 'closte-operator' ), $what ),
				)
				: array(
					'type' => 'warning',
					/* translators: %s: the change */
					'text' => sprintf( __( 'Not discarded: %s is no longer waiting.', 'closte-operator' ), $what ),
				);
		}
		return array(
			'type' => 'error',
			'text' => __( 'Unknown action.', 'closte-operator' ),
		);
	}

	/**
	 * "Clear the rejected list" (network/edit.php?action=closte_operator_clear).
	 *
	 * @return void
	 */
	public function clear_submitted(): void {
		$this->guard( self::CLEAR_ACTION );
		$this->flash( $this->clear_rejected() );
		$this->back();
	}

	/**
	 * Empties the rejected list.
	 *
	 * @return array{type: string, text: string} The notice.
	 */
	public function clear_rejected(): array {
		$count = $this->plugin->queue->clear_rejected();
		return array(
			'type' => 'success',
			'text' => 0 === $count
				? __( 'The rejected list was already empty.', 'closte-operator' )
				: sprintf(
					/* translators: %s: number of changes */
					_n( 'Cleared %s rejected change.', 'Cleared %s rejected changes.', $count, 'closte-operator' ),
					number_format_i18n( $count )
				),
		);
	}

	/**
	 * The DNS check interval form (network/edit.php?action=closte_operator_interval).
	 *
	 * @return void
	 */
	public function interval_submitted(): void {
		$this->guard( self::INTERVAL_ACTION );
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- checked in guard().
		$raw = isset( $_POST[ self::INTERVAL_FIELD ] ) ? sanitize_text_field( wp_unslash( $_POST[ self::INTERVAL_FIELD ] ) ) : '';
		$this->flash( $this->save_interval( $raw ) );
		$this->back();
	}

	/**
	 * Saves the DNS check interval field, unless Ultimate Multisite provides
	 * it or the input is out of range.
	 *
	 * @param string $raw What was submitted.
	 * @return array{type: string, text: string} The notice.
	 */
	public function save_interval( string $raw ): array {
		$current = $this->plugin->check_interval();
		if ( 'ultimate-multisite' === $current['source'] ) {
			return array(
				'type' => 'error',
				'text' => __( 'Not saved: Ultimate Multisite\'s "DNS Check Interval" setting provides the interval; change it there.', 'closte-operator' ),
			);
		}
		$input = Closte_Operator_Screen::interval_input( $raw );
		if ( ! $input['ok'] ) {
			return array(
				'type' => 'error',
				'text' => $input['error'],
			);
		}
		$error = $this->plugin->save_check_interval( $input['seconds'] );
		if ( '' !== $error ) {
			return array(
				'type' => 'error',
				/* translators: %s: why not */
				'text' => sprintf( __( 'Not saved: %s.', 'closte-operator' ), rtrim( $error, '.' ) ),
			);
		}
		return array(
			'type' => 'success',
			'text' => null === $input['seconds']
				? __( 'The DNS check interval is cleared: the sidecar\'s default applies to new domains, and the next sync gives it to the existing ones.', 'closte-operator' )
				: sprintf(
					/* translators: %s: number of seconds */
					__( 'The DNS check interval is now %s seconds; the next sync gives it to the existing domains.', 'closte-operator' ),
					number_format_i18n( $input['seconds'] )
				),
		);
	}

	/**
	 * One notice box.
	 *
	 * @param string $type  success, warning, error or info.
	 * @param string $text  Plain text.
	 * @param string $class Extra class.
	 * @param string $id    Element id, or ''.
	 * @return string
	 */
	private static function notice_html( string $type, string $text, string $class = 'closte-operator-message', string $id = '' ): string {
		return sprintf(
			'<div %sclass="notice notice-%s is-dismissible %s"><p>%s</p></div>',
			'' === $id ? '' : 'id="' . esc_attr( $id ) . '" ',
			esc_attr( in_array( $type, array( 'success', 'warning', 'error', 'info' ), true ) ? $type : 'info' ),
			esc_attr( $class ),
			esc_html( $text )
		);
	}

	/**
	 * A notice on every network-admin page while writes are waiting, the
	 * sidecar was unreachable, there is no token, or the sidecar URL may not
	 * carry it. Reads stored state only.
	 *
	 * @return void
	 */
	public function notice(): void {
		if ( ! current_user_can( 'manage_network' ) ) {
			return;
		}
		$config = $this->plugin->config;
		if ( '' !== $config->token_error ) {
			echo self::notice_html( // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in notice_html().
				'error',
				sprintf(
					/* translators: %s: why there is no token */
					__( 'closte-operator: no sidecar token (%s); domain changes cannot reach the sidecar.', 'closte-operator' ),
					$config->token_error
				),
				'closte-operator-notice'
			);
		}
		if ( '' !== $config->url_error ) {
			echo self::notice_html( // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in notice_html().
				'error',
				sprintf(
					/* translators: %s: what is wrong with the sidecar URL */
					__( 'closte-operator: %s; nothing is sent to the sidecar.', 'closte-operator' ),
					$config->url_error
				),
				'closte-operator-notice'
			);
		}
		$queued = count( $this->plugin->queue->entries() );
		$down   = $this->plugin->queue->last_unreachable();
		if ( 0 === $queued && null === $down ) {
			return;
		}
		$text = 0 === $queued
			? __( 'closte-operator: the sidecar did not answer.', 'closte-operator' )
			: sprintf(
				/* translators: 1: number of changes, 2: sidecar URL */
				_n( 'closte-operator: %1$s domain change is waiting for the sidecar at %2$s; it is retried automatically.', 'closte-operator: %1$s domain changes are waiting for the sidecar at %2$s; they are retried automatically.', $queued, 'closte-operator' ),
				number_format_i18n( $queued ),
				$config->url
			);
		if ( null !== $down ) {
			$text .= ' ' . sprintf(
				/* translators: 1: time since, 2: error */
				__( 'Unreachable %1$s ago: %2$s.', 'closte-operator' ),
				human_time_diff( (int) $down['time'] ),
				(string) $down['error']
			);
		}
		printf(
			'<div class="notice notice-warning is-dismissible closte-operator-notice"><p>%s <a href="%s">%s</a></p></div>',
			esc_html( $text ),
			esc_url( self::page_url() ),
			esc_html__( 'Closte domains', 'closte-operator' )
		);
	}

	/**
	 * The screen: what the sidecar says, each domain with its stage and the
	 * next step (a page of 50, filtered), the waiting and rejected changes,
	 * the sync and the DNS check interval.
	 *
	 * @return void
	 */
	public function render(): void {
		if ( ! current_user_can( 'manage_network' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to see this page.', 'closte-operator' ), '', array( 'response' => 403 ) );
		}
		$now     = time();
		$listing = $this->listing;
		if ( null === $listing ) {
			$listing = $this->plugin->sidecar->domains();
			$this->plugin->queue->observe( $listing );
		}
		$json    = $listing->ok() ? $listing->json() : null;
		$domains = is_array( $json ) && isset( $json['domains'] ) && is_array( $json['domains'] ) ? $json['domains'] : null;
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- display only.
		$query  = Closte_Operator_Screen::query( wp_unslash( $_GET ) );
		$synced = isset( $_GET['synced'] ) ? sanitize_key( wp_unslash( $_GET['synced'] ) ) : '';
		// phpcs:enable
		?>
		<div class="wrap closte-operator">
			<h1><?php esc_html_e( 'Closte domains', 'closte-operator' ); ?></h1>
			<style>
				.closte-operator .closte-operator-expiring td { background: #fcf0f1; }
				.closte-operator .closte-operator-expiring .closte-operator-expires { color: #b32d2e; font-weight: 600; }
				.closte-operator .closte-operator-next { max-width: 36em; }
				.closte-operator .closte-operator-next code, .closte-operator .closte-operator-step code { white-space: nowrap; }
				.closte-operator td form { display: inline; }
				.closte-operator #closte-operator-domains td:first-child code { white-space: nowrap; }
				.closte-operator .closte-operator-error { color: #b32d2e; }
			</style>
			<?php
			$flash = get_site_transient( self::FLASH . get_current_user_id() );
			if ( is_array( $flash ) && isset( $flash['type'], $flash['text'] ) ) {
				delete_site_transient( self::FLASH . get_current_user_id() );
				echo self::notice_html( (string) $flash['type'], (string) $flash['text'], 'closte-operator-message', 'closte-operator-flash' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in notice_html().
			}
			$last = $this->plugin->sync->last();
			if ( '' !== $synced && null !== $last ) {
				$notice = Closte_Operator_Screen::sync_notice( $last );
				echo self::notice_html( $notice['type'], $notice['text'], 'closte-operator-message', 'closte-operator-synced' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in notice_html().
			}
			$this->sidecar_status( $listing, null !== $domains );
			if ( null !== $domains ) {
				$this->domains_section( $domains, $query, $now );
			}
			$this->queue_tables( $now );
			$this->sync_section( $now, $last );
			$this->interval_section();
			?>
		</div>
		<?php
	}

	/**
	 * CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE when the token comes from a file, else ''.
	 *
	 * @return string
	 */
	private static function token_file(): string {
		return ! defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN' ) && defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) ? (string) constant( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) : '';
	}

	/**
	 * Where the sidecar is and whether it answered; the next step when not.
	 *
	 * @param Closte_Operator_Result $listing The answer to GET /v1/domains.
	 * @param bool                   $listed  Whether it held the list.
	 * @return void
	 */
	private function sidecar_status( Closte_Operator_Result $listing, bool $listed ): void {
		echo '<p class="closte-operator-sidecar">';
		printf(
			/* translators: %s: sidecar URL */
			esc_html__( 'Sidecar: %s', 'closte-operator' ),
			'<code>' . esc_html( $this->plugin->config->url ) . '</code>'
		);
		echo ' &mdash; ';
		if ( $listed ) {
			esc_html_e( 'reachable, token accepted.', 'closte-operator' );
			echo '</p>';
			return;
		}
		echo '<strong class="closte-operator-error">' . esc_html( $listing->ok() ? __( 'the answer held no list of domains', 'closte-operator' ) : $listing->message() ) . '</strong></p>';
		printf(
			'<div class="notice notice-error inline is-dismissible closte-operator-step" id="closte-operator-listing-step" data-status="%d"><p><strong>%s</strong> %s</p></div>',
			(int) $listing->status,
			esc_html__( 'What to do:', 'closte-operator' ),
			esc_html( Closte_Operator_Screen::listing_step( $listing, $this->plugin->config->url, self::token_file() ) )
		);
	}

	/**
	 * The filter links, the search box, one page of the domain table and the
	 * page links.
	 *
	 * @param array $domains The listing's domains.
	 * @param array $query   From Closte_Operator_Screen::query().
	 * @param int   $now     Unix time.
	 * @return void
	 */
	private function domains_section( array $domains, array $query, int $now ): void {
		$page  = Closte_Operator_Screen::page( $domains, $query, $now, (int) apply_filters( 'closte_operator_domains_per_page', Closte_Operator_Screen::PER_PAGE ) );
		$names = $this->site_names( Closte_Operator_Screen::site_ids( $page['rows'] ) );
		$base  = array_filter(
			array(
				'filter' => 'all' === $query['filter'] ? '' : $query['filter'],
				's'      => $query['search'],
			)
		);
		$views = array(
			'all'       => __( 'All', 'closte-operator' ),
			'not-ready' => __( 'Not ready', 'closte-operator' ),
			'expiring'  => sprintf(
				/* translators: %s: number of days */
				__( 'Certificate ends within %s days', 'closte-operator' ),
				number_format_i18n( Closte_Operator_Screen::EXPIRY_DAYS )
			),
		);
		echo '<h2>' . esc_html__( 'Mapped domains', 'closte-operator' ) . '</h2>';
		echo '<ul class="subsubsub" id="closte-operator-filters">';
		$links = array();
		foreach ( $views as $filter => $label ) {
			$args    = array_filter(
				array(
					'filter' => 'all' === $filter ? '' : $filter,
					's'      => $query['search'],
				)
			);
			$links[] = sprintf(
				'<li><a href="%s" data-filter="%s"%s>%s <span class="count">(%s)</span></a>',
				esc_url( self::page_url( $args ) ),
				esc_attr( $filter ),
				$filter === $query['filter'] ? ' class="current" aria-current="page"' : '',
				esc_html( $label ),
				esc_html( number_format_i18n( $page['counts'][ $filter ] ) )
			);
		}
		echo implode( ' |</li>', $links ) . '</li></ul>'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped above.
		?>
		<form method="get" action="<?php echo esc_url( network_admin_url( 'settings.php' ) ); ?>">
			<p class="search-box">
				<input type="hidden" name="page" value="<?php echo esc_attr( self::PAGE ); ?>" />
				<?php if ( 'all' !== $query['filter'] ) : ?>
					<input type="hidden" name="filter" value="<?php echo esc_attr( $query['filter'] ); ?>" />
				<?php endif; ?>
				<label class="screen-reader-text" for="closte-operator-search"><?php esc_html_e( 'Search domains', 'closte-operator' ); ?></label>
				<input type="search" id="closte-operator-search" name="s" value="<?php echo esc_attr( $query['search'] ); ?>" />
				<?php submit_button( __( 'Search domains', 'closte-operator' ), '', '', false ); ?>
			</p>
		</form>
		<?php $this->pagination( $page, $base, 'top' ); ?>
		<table class="widefat striped" id="closte-operator-domains">
			<thead>
				<tr>
					<th scope="col"><?php esc_html_e( 'Domain', 'closte-operator' ); ?></th>
					<th scope="col"><?php esc_html_e( 'Site', 'closte-operator' ); ?></th>
					<th scope="col"><?php esc_html_e( 'Stage', 'closte-operator' ); ?></th>
					<th scope="col"><?php esc_html_e( 'Ready', 'closte-operator' ); ?></th>
					<th scope="col"><?php esc_html_e( 'Certificate ends', 'closte-operator' ); ?></th>
					<th scope="col"><?php esc_html_e( 'Next step', 'closte-operator' ); ?></th>
				</tr>
			</thead>
			<tbody>
				<?php if ( array() === $page['rows'] ) : ?>
					<tr><td colspan="6">
						<?php
						if ( array() === $domains ) {
							esc_html_e( 'No mapped domains yet.', 'closte-operator' );
						} else {
							esc_html_e( 'No mapped domain matches.', 'closte-operator' );
						}
						?>
					</td></tr>
				<?php endif; ?>
				<?php
				foreach ( $page['rows'] as $entry ) {
					$this->domain_row( $entry, $names, $now );
				}
				?>
			</tbody>
		</table>
		<?php
		$this->pagination( $page, $base, 'bottom' );
	}

	/**
	 * The names (blogname) of the sites of one page: one get_sites() for them.
	 *
	 * @param array<int, int> $ids Site ids.
	 * @return array<int, string>
	 */
	private function site_names( array $ids ): array {
		if ( array() === $ids ) {
			return array();
		}
		$names = array();
		$sites = get_sites(
			array(
				'site__in'               => $ids,
				'number'                 => count( $ids ),
				'update_site_meta_cache' => false,
			)
		);
		foreach ( $sites as $site ) {
			$names[ (int) $site->blog_id ] = (string) $site->blogname;
		}
		return $names;
	}

	/**
	 * The page links: "N domains", first, previous, "page X of Y", next, last.
	 *
	 * @param array  $page  From Closte_Operator_Screen::page().
	 * @param array  $base  The filter and search arguments to keep.
	 * @param string $where top or bottom.
	 * @return void
	 */
	private function pagination( array $page, array $base, string $where ): void {
		echo '<div class="tablenav ' . esc_attr( $where ) . '"><div class="tablenav-pages closte-operator-pages" data-page="' . esc_attr( (string) $page['page'] ) . '" data-pages="' . esc_attr( (string) $page['pages'] ) . '">';
		echo '<span class="displaying-num">' . esc_html(
			sprintf(
				/* translators: %s: number of domains */
				_n( '%s domain', '%s domains', $page['total'], 'closte-operator' ),
				number_format_i18n( $page['total'] )
			)
		) . '</span>';
		if ( $page['pages'] > 1 ) {
			$link = function ( int $to, string $text, string $label, string $class ) use ( $page, $base ): string {
				if ( $to < 1 || $to > $page['pages'] || $to === $page['page'] ) {
					return '<span class="tablenav-pages-navspan button disabled" aria-hidden="true">' . esc_html( $text ) . '</span>';
				}
				return sprintf(
					'<a class="%s button" href="%s" data-page="%d"><span class="screen-reader-text">%s</span><span aria-hidden="true">%s</span></a>',
					esc_attr( $class ),
					esc_url( self::page_url( $base + array( 'paged' => $to ) ) ),
					$to,
					esc_html( $label ),
					esc_html( $text )
				);
			};
			echo '<span class="pagination-links">';
			echo $link( 1, '«', __( 'First page', 'closte-operator' ), 'first-page' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in $link.
			echo $link( $page['page'] - 1, '‹', __( 'Previous page', 'closte-operator' ), 'prev-page' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in $link.
			echo ' <span class="paging-input">' . esc_html(
				sprintf(
					/* translators: 1: current page, 2: number of pages */
					__( '%1$s of %2$s', 'closte-operator' ),
					number_format_i18n( $page['page'] ),
					number_format_i18n( $page['pages'] )
				)
			) . '</span> ';
			echo $link( $page['page'] + 1, '›', __( 'Next page', 'closte-operator' ), 'next-page' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in $link.
			echo $link( $page['pages'], '»', __( 'Last page', 'closte-operator' ), 'last-page' ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in $link.
			echo '</span>';
		}
		echo '</div><br class="clear" /></div>';
	}

	/**
	 * One row of the domain table.
	 *
	 * @param array              $domain A Domain from GET /v1/domains.
	 * @param array<int, string> $names  Site names by id.
	 * @param int                $now    Unix time.
	 * @return void
	 */
	private function domain_row( array $domain, array $names, int $now ): void {
		$name     = Closte_Operator_Screen::field( $domain, 'domain' );
		$site_id  = isset( $domain['siteId'] ) && is_int( $domain['siteId'] ) ? $domain['siteId'] : null;
		$stage    = Closte_Operator_Screen::field( $domain, 'stage' );
		$ready    = ! empty( $domain['ready'] );
		$expiry   = Closte_Operator_Screen::expiry( $domain, $now );
		$soon     = null !== $expiry && $expiry['soon'];
		$next     = Closte_Operator_Screen::next_step( $domain, $now );
		$expires  = '—';
		$title    = '';
		if ( null !== $expiry ) {
			$expires = $expiry['expired']
				/* translators: %s: how long ago */
				? sprintf( __( 'expired %s ago', 'closte-operator' ), human_time_diff( $expiry['time'], $now ) )
				/* translators: %s: how long until */
				: sprintf( __( 'in %s', 'closte-operator' ), human_time_diff( $now, $expiry['time'] ) );
			$title   = wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $expiry['time'] );
		}
		$issuer = Closte_Operator_Screen::issuer( $domain );
		$proxy  = Closte_Operator_Screen::proxy_note( $domain );
		?>
		<tr class="closte-operator-domain<?php echo $soon ? ' closte-operator-expiring' : ''; ?>" data-domain="<?php echo esc_attr( $name ); ?>" data-stage="<?php echo esc_attr( $stage ); ?>" data-ready="<?php echo $ready ? 'true' : 'false'; ?>" data-expiring="<?php echo $soon ? 'true' : 'false'; ?>" data-proxied="<?php echo '' === $proxy ? 'false' : 'true'; ?>">
			<td>
				<code><?php echo esc_html( $name ); ?></code>
				<?php if ( '' !== $proxy ) : ?>
					<span class="closte-operator-proxied description" title="<?php echo esc_attr( $proxy ); ?>"><?php esc_html_e( 'via proxy/CDN', 'closte-operator' ); ?></span>
				<?php endif; ?>
			</td>
			<td class="closte-operator-site">
				<?php if ( null !== $site_id ) : ?>
					<a href="<?php echo esc_url( network_admin_url( 'site-info.php?id=' . $site_id ) ); ?>"><?php echo esc_html( isset( $names[ $site_id ] ) && '' !== $names[ $site_id ] ? $names[ $site_id ] : __( '(no such site)', 'closte-operator' ) ); ?></a>
					<span class="description"><?php echo esc_html( '#' . $site_id ); ?></span>
				<?php else : ?>
					&mdash;
				<?php endif; ?>
			</td>
			<td class="closte-operator-stage"><?php echo esc_html( Closte_Operator_Screen::stage_label( $stage ) ); ?></td>
			<td class="closte-operator-ready"><?php echo $ready ? esc_html__( 'Ready', 'closte-operator' ) : esc_html__( 'Not ready', 'closte-operator' ); ?></td>
			<td class="closte-operator-expires" title="<?php echo esc_attr( trim( $title . ( '' === $issuer ? '' : ' — ' . $issuer ) ) ); ?>"><?php echo esc_html( $expires ); ?></td>
			<td class="closte-operator-next"><?php echo esc_html( $next ); ?></td>
		</tr>
		<?php
	}

	/**
	 * A small form that posts one action to network/edit.php.
	 *
	 * @param string $action The edit action (also the nonce action).
	 * @param array  $fields Hidden fields.
	 * @param array  $buttons name => [value, label, class].
	 * @return string
	 */
	private static function action_form( string $action, array $fields, array $buttons ): string {
		$html = '<form method="post" action="' . esc_url( network_admin_url( 'edit.php?action=' . $action ) ) . '">';
		$html .= wp_nonce_field( $action, '_wpnonce', true, false );
		foreach ( $fields as $name => $value ) {
			$html .= '<input type="hidden" name="' . esc_attr( $name ) . '" value="' . esc_attr( $value ) . '" />';
		}
		foreach ( $buttons as $button ) {
			$html .= sprintf(
				' <button type="submit" name="%s" value="%s" class="button %s">%s</button>',
				esc_attr( $button[0] ),
				esc_attr( $button[1] ),
				esc_attr( $button[3] ?? '' ),
				esc_html( $button[2] )
			);
		}
		return $html . '</form>';
	}

	/**
	 * The waiting changes (with Retry and Discard) and the rejected ones
	 * (with "Clear the rejected list"), when there are any.
	 *
	 * @param int $now Unix time.
	 * @return void
	 */
	private function queue_tables( int $now ): void {
		$entries  = $this->plugin->queue->entries();
		$failures = $this->plugin->queue->failures();
		if ( array() !== $entries ) {
			echo '<h2>' . esc_html__( 'Waiting changes', 'closte-operator' ) . '</h2>';
			echo '<p>' . esc_html__( 'These changes have not reached the sidecar yet and are retried automatically. Retry sends one now; Discard drops it (the next sync writes every site\'s domains from WordPress again).', 'closte-operator' ) . '</p>';
			if ( count( $entries ) > self::QUEUE_SHOWN ) {
				echo '<p>' . esc_html(
					sprintf(
						/* translators: 1: number shown, 2: number waiting */
						__( 'The %1$s oldest of %2$s waiting changes:', 'closte-operator' ),
						number_format_i18n( self::QUEUE_SHOWN ),
						number_format_i18n( count( $entries ) )
					)
				) . '</p>';
			}
			echo '<table class="widefat striped" id="closte-operator-queue"><thead><tr>';
			foreach ( array( __( 'Change', 'closte-operator' ), __( 'Attempts', 'closte-operator' ), __( 'Next try', 'closte-operator' ), __( 'Last error', 'closte-operator' ), __( 'Actions', 'closte-operator' ) ) as $heading ) {
				echo '<th scope="col">' . esc_html( $heading ) . '</th>';
			}
			echo '</tr></thead><tbody>';
			foreach ( array_slice( $entries, 0, self::QUEUE_SHOWN, true ) as $key => $entry ) {
				$next = (int) ( $entry['next'] ?? 0 );
				printf(
					'<tr class="closte-operator-waiting" data-key="%s"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
					esc_attr( (string) $key ),
					esc_html( Closte_Operator_Screen::describe( $entry ) ),
					esc_html( number_format_i18n( (int) ( $entry['attempts'] ?? 0 ) ) ),
					esc_html( $next <= $now ? __( 'at the next cron run', 'closte-operator' ) : sprintf( /* translators: %s: time until the retry */ __( 'in %s', 'closte-operator' ), human_time_diff( $now, $next ) ) ),
					esc_html( (string) ( $entry['error'] ?? '' ) ),
					self::action_form( // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in action_form().
						self::QUEUE_ACTION,
						array( 'key' => (string) $key ),
						array(
							array( 'do', 'retry', __( 'Retry', 'closte-operator' ), 'closte-operator-retry' ),
							array( 'do', 'discard', __( 'Discard', 'closte-operator' ), 'closte-operator-discard' ),
						)
					)
				);
			}
			echo '</tbody></table>';
		}
		if ( array() !== $failures ) {
			echo '<h2>' . esc_html__( 'Rejected changes', 'closte-operator' ) . '</h2>';
			echo '<p>' . esc_html__( 'These changes were given up: the sidecar refused them in a way a retry cannot fix, they kept conflicting or kept failing too long, or the queue was full. The whole-set sync writes every site\'s domains again from WordPress\'s own tables.', 'closte-operator' ) . '</p>';
			echo '<table class="widefat striped" id="closte-operator-failures"><thead><tr>';
			foreach ( array( __( 'Change', 'closte-operator' ), __( 'When', 'closte-operator' ), __( 'Attempts', 'closte-operator' ), __( 'Why', 'closte-operator' ) ) as $heading ) {
				echo '<th scope="col">' . esc_html( $heading ) . '</th>';
			}
			echo '</tr></thead><tbody>';
			foreach ( $failures as $failure ) {
				printf(
					'<tr class="closte-operator-rejected"><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>',
					esc_html( Closte_Operator_Screen::describe( $failure ) ),
					esc_html( sprintf( /* translators: %s: time since */ __( '%s ago', 'closte-operator' ), human_time_diff( (int) ( $failure['time'] ?? 0 ), $now ) ) ),
					esc_html( number_format_i18n( (int) ( $failure['attempts'] ?? 0 ) ) ),
					esc_html( (string) ( $failure['error'] ?? '' ) )
				);
			}
			echo '</tbody></table><p>';
			echo self::action_form( self::CLEAR_ACTION, array(), array( array( 'clear', '1', __( 'Clear the rejected list', 'closte-operator' ), 'closte-operator-clear' ) ) ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- escaped in action_form().
			echo '</p>';
		}
	}

	/**
	 * The sync: what it does, the last and next run, an overdue warning,
	 * the batches in progress, and the "Sync now" button.
	 *
	 * @param int        $now  Unix time.
	 * @param array|null $last The last summary.
	 * @return void
	 */
	private function sync_section( int $now, ?array $last ): void {
		$next       = $this->plugin->next_sync();
		$recurrence = $this->plugin->recurrence();
		$progress   = $this->plugin->sync->progress();
		echo '<h2>' . esc_html__( 'Sync', 'closte-operator' ) . '</h2><p>';
		echo esc_html(
			sprintf(
				/* translators: %s: the sync's period, e.g. "1 hour" */
				__( 'The sync compares every site\'s domains in WordPress with the sidecar\'s and writes the sites that differ, then retries the waiting changes. It runs on WP-Cron every %s, in batches that a follow-up run continues.', 'closte-operator' ),
				human_time_diff( 0, max( 1, (int) $recurrence['interval'] ) )
			)
		);
		if ( null !== $last ) {
			echo ' ';
			printf(
				/* translators: %s: time since the last sync */
				esc_html__( 'Last run %s ago.', 'closte-operator' ),
				esc_html( human_time_diff( (int) ( $last['time'] ?? $now ), $now ) )
			);
		}
		echo '</p>';
		if ( $this->plugin->sync_overdue() ) {
			$text = null !== $next && $next < $now
				? sprintf(
					/* translators: %s: how long ago */
					__( 'The sync is overdue: it was due %s ago and has not run. WP-Cron runs only when the site gets visits, or from a system cron calling wp-cron.php when DISABLE_WP_CRON is set: check that one of them runs, or use "Sync now".', 'closte-operator' ),
					human_time_diff( $next, $now )
				)
				: __( 'The sync is overdue. WP-Cron runs only when the site gets visits, or from a system cron calling wp-cron.php when DISABLE_WP_CRON is set: check that one of them runs, or use "Sync now".', 'closte-operator' );
			echo '<div class="notice notice-warning inline is-dismissible" id="closte-operator-overdue"><p>' . esc_html( $text ) . '</p></div>';
		} elseif ( null !== $next ) {
			echo '<p id="closte-operator-next-sync">' . esc_html(
				sprintf(
					/* translators: 1: time until, 2: date and time */
					__( 'Next run: %1$s (%2$s).', 'closte-operator' ),
					$next <= $now ? __( 'now, at the next cron run', 'closte-operator' ) : sprintf( /* translators: %s: time until */ __( 'in %s', 'closte-operator' ), human_time_diff( $now, $next ) ),
					wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $next )
				)
			) . '</p>';
		} else {
			echo '<p id="closte-operator-next-sync">' . esc_html__( 'No run is scheduled yet; the main site schedules it on its next page view.', 'closte-operator' ) . '</p>';
		}
		if ( '' !== $recurrence['error'] ) {
			echo '<div class="notice notice-error inline is-dismissible"><p>' . esc_html(
				sprintf(
					/* translators: %s: what is wrong with the recurrence */
					__( 'The sync\'s recurrence (closte_operator_sync_recurrence filter) is not usable: %s.', 'closte-operator' ),
					rtrim( $recurrence['error'], '.' )
				)
			) . '</p></div>';
		}
		if ( null !== $progress ) {
			$done      = (int) ( $progress['done'] ?? 0 );
			$remaining = (int) ( $progress['remaining'] ?? 0 );
			echo '<p id="closte-operator-progress">' . esc_html(
				sprintf(
					/* translators: 1: sites done, 2: sites remaining */
					_n( 'A sync is in progress: %1$s site done, %2$s left for its follow-up runs.', 'A sync is in progress: %1$s sites done, %2$s left for its follow-up runs.', $done, 'closte-operator' ),
					number_format_i18n( $done ),
					number_format_i18n( $remaining )
				)
			) . '</p>';
		}
		?>
		<form method="post" action="<?php echo esc_url( network_admin_url( 'edit.php?action=' . self::ACTION ) ); ?>">
			<?php wp_nonce_field( self::ACTION ); ?>
			<?php submit_button( __( 'Sync now', 'closte-operator' ), 'primary', 'closte-operator-sync', false ); ?>
		</form>
		<?php
	}

	/**
	 * The DNS check interval field: editable, or read-only when Ultimate
	 * Multisite provides it.
	 *
	 * @return void
	 */
	private function interval_section(): void {
		$interval = $this->plugin->check_interval();
		$locked   = 'ultimate-multisite' === $interval['source'];
		echo '<h2>' . esc_html__( 'DNS check interval', 'closte-operator' ) . '</h2>';
		echo '<p>' . esc_html(
			sprintf(
				/* translators: 1: minimum seconds, 2: maximum seconds */
				__( 'How often the controller checks the DNS and the certificate of a domain that is not ready yet, from %1$s to %2$s seconds. Every mapped domain gets it.', 'closte-operator' ),
				number_format_i18n( Closte_Operator_Screen::INTERVAL_MIN ),
				number_format_i18n( Closte_Operator_Screen::INTERVAL_MAX )
			)
		) . '</p>';
		?>
		<form method="post" action="<?php echo esc_url( network_admin_url( 'edit.php?action=' . self::INTERVAL_ACTION ) ); ?>" id="closte-operator-interval" data-source="<?php echo esc_attr( $interval['source'] ); ?>">
			<?php wp_nonce_field( self::INTERVAL_ACTION ); ?>
			<label for="<?php echo esc_attr( self::INTERVAL_FIELD ); ?>"><?php esc_html_e( 'Seconds', 'closte-operator' ); ?></label>
			<input type="number" class="small-text" id="<?php echo esc_attr( self::INTERVAL_FIELD ); ?>" name="<?php echo esc_attr( self::INTERVAL_FIELD ); ?>" min="<?php echo esc_attr( (string) Closte_Operator_Screen::INTERVAL_MIN ); ?>" max="<?php echo esc_attr( (string) Closte_Operator_Screen::INTERVAL_MAX ); ?>" step="1" value="<?php echo esc_attr( null === $interval['seconds'] ? '' : (string) $interval['seconds'] ); ?>"<?php echo $locked ? ' readonly="readonly" disabled="disabled"' : ''; ?> />
			<?php
			if ( ! $locked ) {
				submit_button( __( 'Save', 'closte-operator' ), 'secondary', 'closte-operator-save-interval', false );
			}
			?>
			<p class="description" id="closte-operator-interval-source"><?php echo esc_html( Closte_Operator_Screen::interval_source( $interval ) ); ?></p>
			<?php if ( '' !== $interval['error'] ) : ?>
				<p class="closte-operator-error"><?php echo esc_html( $interval['error'] ); ?></p>
			<?php endif; ?>
		</form>
		<?php
	}

	/**
	 * Adds the Site Health test: on the main site of the main network only
	 * (not once per site), and asynchronous, so the Site Health page never
	 * waits on the sidecar; WordPress's weekly check runs it directly there.
	 *
	 * @param array $tests Site Health tests.
	 * @return array
	 */
	public function site_status_tests( $tests ) {
		if ( ! is_array( $tests ) || ! is_main_site() || ! is_main_network() ) {
			return $tests;
		}
		$tests['async'][ self::TEST ] = array(
			'label'             => __( 'closte-operator sidecar', 'closte-operator' ),
			'test'              => rest_url( self::REST_NAMESPACE . self::REST_ROUTE ),
			'has_rest'          => true,
			'async_direct_test' => array( $this, 'site_health_test' ),
		);
		return $tests;
	}

	/**
	 * The REST route the Site Health page calls (GET, network administrators only).
	 *
	 * @return void
	 */
	public function rest_routes(): void {
		register_rest_route(
			self::REST_NAMESPACE,
			self::REST_ROUTE,
			array(
				'methods'             => 'GET',
				'callback'            => array( $this, 'site_health_test' ),
				'permission_callback' => static fn() => current_user_can( 'manage_network' ),
			)
		);
	}

	/**
	 * The Site Health test: sidecar reachable, token accepted, domains not
	 * ready and certificates ending soon listed with their next step, the
	 * sync not overdue.
	 *
	 * @return array
	 */
	public function site_health_test(): array {
		$health  = $this->plugin->sidecar->health();
		$domains = $health->ok() ? $this->plugin->sidecar->domains() : null;
		$this->plugin->queue->observe( null === $domains ? $health : $domains );
		$now     = time();
		$verdict = Closte_Operator_Health::evaluate(
			$this->plugin->config,
			$health,
			$domains,
			count( $this->plugin->queue->entries() ),
			$now,
			$this->plugin->sync_overdue(),
			$this->plugin->next_sync(),
			self::token_file(),
			$this->plugin->queue_problem()
		);
		$description = '<p>' . esc_html__( 'WordPress registers mapped domains on Closte through the closte-operator sidecar in its pod, which holds the only Closte key.', 'closte-operator' ) . '</p>';
		if ( array() !== $verdict['problems'] ) {
			$description .= '<ul>';
			foreach ( $verdict['problems'] as $problem ) {
				$description .= '<li>' . esc_html( $problem ) . '</li>';
			}
			$description .= '</ul>';
		}
		$lists = array(
			'not_ready' => __( 'Not ready:', 'closte-operator' ),
			'expiring'  => sprintf(
				/* translators: %s: number of days */
				__( 'Certificates ending within %s days:', 'closte-operator' ),
				number_format_i18n( Closte_Operator_Screen::EXPIRY_DAYS )
			),
		);
		foreach ( $lists as $kind => $heading ) {
			if ( array() === $verdict[ $kind ] ) {
				continue;
			}
			$description .= '<p>' . esc_html( $heading ) . '</p><ul>';
			foreach ( array_slice( $verdict[ $kind ], 0, self::HEALTH_SHOWN ) as $entry ) {
				$description .= sprintf(
					'<li><code>%s</code> (%s) &mdash; %s</li>',
					esc_html( Closte_Operator_Screen::field( $entry, 'domain' ) ),
					esc_html( Closte_Operator_Screen::stage_label( Closte_Operator_Screen::field( $entry, 'stage' ) ) ),
					esc_html( Closte_Operator_Screen::next_step( $entry, $now ) )
				);
			}
			$more = count( $verdict[ $kind ] ) - self::HEALTH_SHOWN;
			if ( $more > 0 ) {
				$description .= '<li>' . esc_html(
					sprintf(
						/* translators: %s: number of domains */
						_n( 'and %s more on the Closte domains screen', 'and %s more on the Closte domains screen', $more, 'closte-operator' ),
						number_format_i18n( $more )
					)
				) . '</li>';
			}
			$description .= '</ul>';
		}
		return array(
			'label'       => $verdict['summary'],
			'status'      => $verdict['status'],
			'badge'       => array(
				'label' => __( 'Closte', 'closte-operator' ),
				'color' => 'critical' === $verdict['status'] ? 'red' : 'blue',
			),
			'description' => $description,
			'actions'     => sprintf( '<p><a href="%s">%s</a></p>', esc_url( self::page_url() ), esc_html__( 'Closte domains', 'closte-operator' ) ),
			'test'        => self::TEST,
		);
	}
}
