<?php
/**
 * The network-admin screen, its "Sync now" button, the admin notice and the
 * Site Health test.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * What a network administrator sees. Only the screen and the Site Health test
 * talk to the sidecar; notices read stored state, so no page waits on it.
 */
final class Closte_Operator_Admin {

	const PAGE   = 'closte-operator';
	const ACTION = 'closte_operator_sync';

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Plugin $plugin The plugin.
	 */
	public function __construct( private Closte_Operator_Plugin $plugin ) {}

	/**
	 * Adds the admin hooks.
	 *
	 * @param Closte_Operator_Plugin $plugin The plugin.
	 * @return void
	 */
	public static function register( Closte_Operator_Plugin $plugin ): void {
		$admin = new self( $plugin );
		add_action( 'network_admin_menu', array( $admin, 'menu' ) );
		add_action( 'network_admin_edit_' . self::ACTION, array( $admin, 'sync_now' ) );
		add_action( 'network_admin_notices', array( $admin, 'notice' ) );
		add_filter( 'site_status_tests', array( $admin, 'site_status_tests' ) );
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
		add_submenu_page(
			'settings.php',
			__( 'Closte domains', 'closte-operator' ),
			__( 'Closte domains', 'closte-operator' ),
			'manage_network',
			self::PAGE,
			array( $this, 'render' )
		);
	}

	/**
	 * The "Sync now" button's target (network/edit.php?action=closte_operator_sync).
	 *
	 * @return void
	 */
	public function sync_now(): void {
		if ( ! current_user_can( 'manage_network' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to sync domains.', 'closte-operator' ), '', array( 'response' => 403 ) );
		}
		check_admin_referer( self::ACTION );
		$summary = $this->plugin->sync();
		wp_safe_redirect( self::page_url( array( 'synced' => $summary['ok'] ? 'ok' : 'failed' ) ) );
		exit;
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
			printf(
				'<div class="notice notice-error closte-operator-notice"><p><strong>closte-operator:</strong> %s</p></div>',
				esc_html(
					sprintf(
						/* translators: %s: why there is no token */
						__( 'no sidecar token (%s); domain changes cannot reach the sidecar.', 'closte-operator' ),
						$config->token_error
					)
				)
			);
		}
		if ( '' !== $config->url_error ) {
			printf(
				'<div class="notice notice-error closte-operator-notice"><p><strong>closte-operator:</strong> %s</p></div>',
				esc_html(
					sprintf(
						/* translators: %s: what is wrong with the sidecar URL */
						__( '%s; nothing is sent to the sidecar.', 'closte-operator' ),
						$config->url_error
					)
				)
			);
		}
		$queued = count( $this->plugin->queue->entries() );
		$down   = $this->plugin->queue->last_unreachable();
		if ( 0 === $queued && null === $down ) {
			return;
		}
		$text = sprintf(
			/* translators: 1: number of writes, 2: sidecar URL */
			_n( '%1$d domain change is waiting for the sidecar at %2$s; it is retried automatically.', '%1$d domain changes are waiting for the sidecar at %2$s; they are retried automatically.', $queued, 'closte-operator' ),
			$queued,
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
			'<div class="notice notice-warning closte-operator-notice"><p><strong>closte-operator:</strong> %s <a href="%s">%s</a></p></div>',
			esc_html( $text ),
			esc_url( self::page_url() ),
			esc_html__( 'Closte domains', 'closte-operator' )
		);
	}

	/**
	 * The screen: each domain with its stage, readiness and certificate
	 * expiry (GET /v1/domains), the waiting and failed writes, the last sync.
	 *
	 * @return void
	 */
	public function render(): void {
		if ( ! current_user_can( 'manage_network' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to see this page.', 'closte-operator' ), '', array( 'response' => 403 ) );
		}
		$listing = $this->plugin->sidecar->domains();
		$this->plugin->queue->observe( $listing );
		$json    = $listing->json();
		$domains = $listing->ok() && is_array( $json ) && isset( $json['domains'] ) && is_array( $json['domains'] ) ? $json['domains'] : null;
		$synced  = isset( $_GET['synced'] ) ? sanitize_key( wp_unslash( $_GET['synced'] ) ) : ''; // phpcs:ignore WordPress.Security.NonceVerification.Recommended -- display only.
		$last    = $this->plugin->sync->last();
		?>
		<div class="wrap closte-operator">
			<h1><?php esc_html_e( 'Closte domains', 'closte-operator' ); ?></h1>
			<?php
			if ( '' !== $synced && null !== $last ) {
				$this->sync_notice( $last );
			}
			?>
			<p>
				<?php
				printf(
					/* translators: %s: sidecar URL */
					esc_html__( 'Sidecar: %s', 'closte-operator' ),
					'<code>' . esc_html( $this->plugin->config->url ) . '</code>'
				);
				echo ' &mdash; ';
				if ( null !== $domains ) {
					esc_html_e( 'reachable, token accepted.', 'closte-operator' );
				} else {
					echo '<strong class="closte-operator-error">' . esc_html( $listing->message() ) . '</strong>';
				}
				?>
			</p>
			<?php if ( null !== $domains ) : ?>
				<table class="widefat striped" id="closte-operator-domains">
					<thead>
						<tr>
							<th scope="col"><?php esc_html_e( 'Domain', 'closte-operator' ); ?></th>
							<th scope="col"><?php esc_html_e( 'Site', 'closte-operator' ); ?></th>
							<th scope="col"><?php esc_html_e( 'Stage', 'closte-operator' ); ?></th>
							<th scope="col"><?php esc_html_e( 'Ready', 'closte-operator' ); ?></th>
							<th scope="col"><?php esc_html_e( 'Details', 'closte-operator' ); ?></th>
							<th scope="col"><?php esc_html_e( 'Certificate expires', 'closte-operator' ); ?></th>
						</tr>
					</thead>
					<tbody>
						<?php if ( array() === $domains ) : ?>
							<tr><td colspan="6"><?php esc_html_e( 'No mapped domains yet.', 'closte-operator' ); ?></td></tr>
						<?php endif; ?>
						<?php foreach ( $domains as $domain ) : ?>
							<?php $this->domain_row( is_array( $domain ) ? $domain : array() ); ?>
						<?php endforeach; ?>
					</tbody>
				</table>
			<?php endif; ?>
			<?php $this->queue_tables(); ?>
			<h2><?php esc_html_e( 'Sync', 'closte-operator' ); ?></h2>
			<p>
				<?php
				esc_html_e( 'The sync compares every site\'s domains in WordPress with the sidecar\'s and writes the sites that differ, then retries the waiting changes. It runs on WP-Cron every hour.', 'closte-operator' );
				if ( null !== $last ) {
					echo ' ';
					printf(
						/* translators: %s: time since the last sync */
						esc_html__( 'Last run %s ago.', 'closte-operator' ),
						esc_html( human_time_diff( (int) $last['time'] ) )
					);
				}
				?>
			</p>
			<form method="post" action="<?php echo esc_url( network_admin_url( 'edit.php?action=' . self::ACTION ) ); ?>">
				<?php wp_nonce_field( self::ACTION ); ?>
				<?php submit_button( __( 'Sync now', 'closte-operator' ), 'primary', 'closte-operator-sync', false ); ?>
			</form>
		</div>
		<?php
	}

	/**
	 * One row of the domain table.
	 *
	 * @param array $domain A Domain from GET /v1/domains.
	 * @return void
	 */
	private function domain_row( array $domain ): void {
		$name    = isset( $domain['domain'] ) ? (string) $domain['domain'] : '';
		$site_id = isset( $domain['siteId'] ) && is_int( $domain['siteId'] ) ? $domain['siteId'] : null;
		$stage   = isset( $domain['stage'] ) && is_string( $domain['stage'] ) ? $domain['stage'] : '';
		$ready   = ! empty( $domain['ready'] );
		$details = array_filter(
			array(
				isset( $domain['reason'] ) && is_string( $domain['reason'] ) ? $domain['reason'] : '',
				isset( $domain['message'] ) && is_string( $domain['message'] ) ? $domain['message'] : '',
			)
		);
		$expires = '';
		if ( isset( $domain['certificate']['notAfter'] ) && is_string( $domain['certificate']['notAfter'] ) ) {
			$time    = strtotime( $domain['certificate']['notAfter'] );
			$expires = false === $time ? $domain['certificate']['notAfter'] : sprintf(
				'%s (%s)',
				wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $time ),
				$time > time()
					/* translators: %s: time until expiry */
					? sprintf( __( 'in %s', 'closte-operator' ), human_time_diff( $time ) )
					: __( 'expired', 'closte-operator' )
			);
		}
		?>
		<tr class="closte-operator-domain" data-domain="<?php echo esc_attr( $name ); ?>" data-stage="<?php echo esc_attr( $stage ); ?>" data-ready="<?php echo $ready ? 'true' : 'false'; ?>">
			<td><code><?php echo esc_html( $name ); ?></code></td>
			<td>
				<?php if ( null !== $site_id ) : ?>
					<a href="<?php echo esc_url( network_admin_url( 'site-info.php?id=' . $site_id ) ); ?>"><?php echo esc_html( '#' . $site_id ); ?></a>
				<?php else : ?>
					&mdash;
				<?php endif; ?>
			</td>
			<td class="closte-operator-stage"><?php echo esc_html( '' === $stage ? '—' : $stage ); ?></td>
			<td class="closte-operator-ready"><?php echo $ready ? esc_html__( 'Ready', 'closte-operator' ) : esc_html__( 'Not ready', 'closte-operator' ); ?></td>
			<td><?php echo esc_html( implode( ': ', $details ) ); ?></td>
			<td><?php echo esc_html( '' === $expires ? '—' : $expires ); ?></td>
		</tr>
		<?php
	}

	/**
	 * The waiting writes and the dropped ones, when there are any.
	 *
	 * @return void
	 */
	private function queue_tables(): void {
		$entries  = $this->plugin->queue->entries();
		$failures = $this->plugin->queue->failures();
		if ( array() !== $entries ) {
			echo '<h2>' . esc_html__( 'Waiting changes', 'closte-operator' ) . '</h2>';
			echo '<table class="widefat striped" id="closte-operator-queue"><thead><tr>';
			foreach ( array( __( 'Change', 'closte-operator' ), __( 'Attempts', 'closte-operator' ), __( 'Next try', 'closte-operator' ), __( 'Last error', 'closte-operator' ) ) as $heading ) {
				echo '<th scope="col">' . esc_html( $heading ) . '</th>';
			}
			echo '</tr></thead><tbody>';
			foreach ( $entries as $entry ) {
				$next = (int) $entry['next'];
				printf(
					'<tr><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>',
					esc_html( self::describe( $entry ) ),
					(int) $entry['attempts'],
					esc_html( $next <= time() ? __( 'at the next cron run', 'closte-operator' ) : sprintf( /* translators: %s: time until the retry */ __( 'in %s', 'closte-operator' ), human_time_diff( $next ) ) ),
					esc_html( (string) $entry['error'] )
				);
			}
			echo '</tbody></table>';
		}
		if ( array() !== $failures ) {
			echo '<h2>' . esc_html__( 'Rejected changes', 'closte-operator' ) . '</h2>';
			echo '<p>' . esc_html__( 'These changes were given up: the sidecar refused them in a way a retry cannot fix, they kept conflicting or kept failing too long, or the queue was full. The whole-set sync writes every site\'s domains again from WordPress\'s own tables.', 'closte-operator' ) . '</p>';
			echo '<table class="widefat striped" id="closte-operator-failures"><tbody>';
			foreach ( $failures as $failure ) {
				printf(
					'<tr><td>%s</td><td>%s</td><td>%s</td></tr>',
					esc_html( self::describe( $failure ) ),
					esc_html( sprintf( /* translators: %s: time since */ __( '%s ago', 'closte-operator' ), human_time_diff( (int) $failure['time'] ) ) ),
					esc_html( (string) $failure['error'] )
				);
			}
			echo '</tbody></table>';
		}
	}

	/**
	 * The result of "Sync now".
	 *
	 * @param array $last The sync summary.
	 * @return void
	 */
	private function sync_notice( array $last ): void {
		if ( ! $last['ok'] ) {
			printf(
				'<div class="notice notice-error"><p>%s</p></div>',
				esc_html(
					sprintf(
						/* translators: %s: error */
						__( 'Sync failed: %s', 'closte-operator' ),
						(string) $last['error']
					)
				)
			);
			return;
		}
		printf(
			'<div class="notice notice-success" id="closte-operator-synced"><p>%s</p></div>',
			esc_html(
				sprintf(
					/* translators: 1: sites, 2: written, 3: queued, 4: failed */
					__( 'Synced %1$d sites: %2$d written, %3$d queued, %4$d rejected.', 'closte-operator' ),
					(int) $last['sites'],
					(int) $last['written'],
					(int) $last['queued'],
					(int) $last['failed']
				)
			)
		);
	}

	/**
	 * A queue entry in words.
	 *
	 * @param array $op Operation.
	 * @return string
	 */
	private static function describe( array $op ): string {
		switch ( $op['op'] ?? '' ) {
			case 'put':
				return null === ( $op['site'] ?? null ) ? sprintf( 'add %s', $op['domain'] ) : sprintf( 'add %s (site #%d)', $op['domain'], $op['site'] );
			case 'delete':
				return sprintf( 'remove %s', $op['domain'] );
			case 'site':
				return sprintf( 'site #%d: %s', $op['site'], array() === $op['domains'] ? '(none)' : implode( ', ', $op['domains'] ) );
		}
		return '?';
	}

	/**
	 * Adds the Site Health test.
	 *
	 * @param array $tests Site Health tests.
	 * @return array
	 */
	public function site_status_tests( $tests ) {
		$tests['direct']['closte_operator_sidecar'] = array(
			'label' => __( 'closte-operator sidecar', 'closte-operator' ),
			'test'  => array( $this, 'site_health_test' ),
		);
		return $tests;
	}

	/**
	 * The Site Health test: sidecar reachable, token accepted, domains not
	 * ready listed.
	 *
	 * @return array
	 */
	public function site_health_test(): array {
		$health  = $this->plugin->sidecar->health();
		$domains = $health->ok() ? $this->plugin->sidecar->domains() : null;
		$this->plugin->queue->observe( null === $domains ? $health : $domains );
		$verdict = Closte_Operator_Health::evaluate( $this->plugin->config, $health, $domains, count( $this->plugin->queue->entries() ) );

		$description = '<p>' . esc_html__( 'WordPress registers mapped domains on Closte through the closte-operator sidecar in its pod, which holds the only Closte key.', 'closte-operator' ) . '</p>';
		if ( array() !== $verdict['problems'] ) {
			$description .= '<ul>';
			foreach ( $verdict['problems'] as $problem ) {
				$description .= '<li>' . esc_html( $problem ) . '</li>';
			}
			$description .= '</ul>';
		}
		if ( array() !== $verdict['not_ready'] ) {
			$description .= '<p>' . esc_html__( 'Not ready:', 'closte-operator' ) . '</p><ul>';
			foreach ( $verdict['not_ready'] as $entry ) {
				$description .= sprintf(
					'<li><code>%s</code> &mdash; %s</li>',
					esc_html( (string) ( $entry['domain'] ?? '' ) ),
					esc_html( trim( implode( ': ', array_filter( array( (string) ( $entry['stage'] ?? '' ), (string) ( $entry['reason'] ?? '' ), (string) ( $entry['message'] ?? '' ) ) ) ) ) )
				);
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
			'test'        => 'closte_operator_sidecar',
		);
	}
}
